// The message contract end to end, with real clients: the trace context a POST brings reaches the
// Kafka header (kcat) and the consumer's log line, produced messages match the JSON Schema
// (python3-jsonschema), and every kind of poison, produced with kcat and python3-kafka, lands on
// the dead-letter topic once, bytes and headers intact, its position committed only after that.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "poison_corpus.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

const std::string sent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string sent_traceparent = "00-" + sent_trace + "-00f067aa0ba902b7-01";

std::string temp_dir() {
  char tmpl[] = "/tmp/uas-contract-XXXXXX";
  return mkdtemp(tmpl);
}

// kcat reading a whole topic as it is now, one line per message in the given format.
std::string read_all(const std::string& broker, const std::string& topic, const std::string& format) {
  return run_command("kcat -b " + broker + " -C -t " + topic + " -o beginning -e -q -f '" + format
                     + "'")
    .output;
}

// A message read back from the dead-letter topic with kcat.
struct dead_letter {
  std::optional<std::string> key, value;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Splits kcat's `%h` (name=value,name=value): a value may hold commas, so a comma ends a value
// only where a header this test knows of begins.
std::vector<std::pair<std::string, std::string>> split_headers(const std::string& text) {
  static const std::vector<std::string> names = {"schema-version", "origin", "traceparent",
                                                 "dlq."};
  std::vector<std::pair<std::string, std::string>> headers;
  size_t start = 0;
  while (start < text.size()) {
    auto eq = text.find('=', start);
    if (eq == std::string::npos)
      break;
    size_t end = eq;
    while ((end = text.find(',', end + 1)) != std::string::npos) {
      bool next_is_header = false;
      for (auto& n : names)
        next_is_header |= text.compare(end + 1, n.size(), n) == 0;
      if (next_is_header)
        break;
    }
    if (end == std::string::npos)
      end = text.size();
    headers.emplace_back(text.substr(start, eq - start), text.substr(eq + 1, end - eq - 1));
    start = end + 1;
  }
  return headers;
}

// Every message on the dead-letter topic. kcat prints the lengths first (-1: null), then the
// headers on a line, then the key's and the value's bytes as they are.
std::vector<dead_letter> read_dead_letters(const std::string& broker) {
  auto out = read_all(broker, "user-activity-events.dlq", "%K %S\\n%h\\n%k%s");
  std::vector<dead_letter> letters;
  size_t at = 0;
  auto line = [&] {
    auto nl = out.find('\n', at);
    auto l = out.substr(at, nl - at);
    at = nl + 1;
    return l;
  };
  auto bytes = [&](long long n) -> std::optional<std::string> {
    if (n < 0)
      return std::nullopt;
    auto b = out.substr(at, static_cast<size_t>(n));
    at += static_cast<size_t>(n);
    return b;
  };
  while (at < out.size()) {
    std::istringstream lengths{line()};
    long long key_length = -2, value_length = -2;
    lengths >> key_length >> value_length;
    REQUIRE(value_length >= -1);
    dead_letter d;
    d.headers = split_headers(line());
    d.key = bytes(key_length);
    d.value = bytes(value_length);
    letters.push_back(std::move(d));
  }
  return letters;
}

std::string header(const dead_letter& d, const std::string& name) {
  for (auto& [n, v] : d.headers)
    if (n == name)
      return v;
  return "(absent)";
}

// The group's committed position in a partition (-1001 without one), as Kafka's admin client
// reads it, once `done` holds for it or `timeout` passed.
long long wait_committed(const std::string& broker, int partition,
                         const std::function<bool(long long)>& done,
                         std::chrono::milliseconds timeout = 20s) {
  long long offset = -1001;
  for (auto deadline = std::chrono::steady_clock::now() + timeout;;) {
    auto r = run_command(
      "/usr/bin/python3 -c \"from kafka import KafkaAdminClient, TopicPartition\n"
      "a = KafkaAdminClient(bootstrap_servers='" + broker + "', api_version=(2, 5, 0))\n"
      "tp = TopicPartition('user-activity-events', " + std::to_string(partition) + ")\n"
      "o = a.list_consumer_group_offsets('user-activity-consumer-group', partitions=[tp])\n"
      "print(o[tp].offset if tp in o else -1001)\"");
    if (r.status == 0)
      offset = std::stoll(r.output);
    if (done(offset) || std::chrono::steady_clock::now() > deadline)
      return offset;
    std::this_thread::sleep_for(200ms);
  }
}

} // namespace

TEST_CASE("a traceparent sent with a POST is continued into the Kafka header and the consumer's log") {
  service_process service;
  auto cli = service.client();
  auto traced = cli.Post("/events/generate", {{"traceparent", sent_traceparent}},
                         R"({"userId":"traced","eventType":"LOGIN"})", "application/json");
  REQUIRE(traced);
  REQUIRE(traced->status == 201);
  auto answered = traced->get_header_value("traceparent");
  CHECK(answered.size() == 55);
  CHECK(answered.rfind("00-" + sent_trace + "-", 0) == 0); // the same trace
  CHECK(answered.substr(36, 16) != "00f067aa0ba902b7");    // a span of its own
  auto id = json::parse(traced->body)["eventId"].get<std::string>();

  auto fresh = cli.Post("/events/generate", {{"traceparent", "00-zzzz-not-valid"}},
                        R"({"userId":"untraced","eventType":"LOGOUT"})", "application/json");
  REQUIRE(fresh);
  REQUIRE(fresh->status == 201);
  auto fresh_traceparent = fresh->get_header_value("traceparent");
  CHECK(fresh_traceparent.size() == 55);
  CHECK(fresh_traceparent.find(sent_trace) == std::string::npos); // a new trace

  auto line = service.wait_for_line("Processed event: eventId=" + id);
  REQUIRE(line);
  CHECK(line->find("traceId=" + sent_trace) != std::string::npos);

  // The message's headers, as kcat prints them, and its value.
  auto topic = read_all(service.broker(), "user-activity-events", "%h\\t%s\\n");
  std::string headers;
  for (std::stringstream lines{topic}; std::getline(lines, line.emplace());)
    if (line->find(id) != std::string::npos)
      headers = line->substr(0, line->find('\t'));
  CHECK(headers == "schema-version=1,traceparent=" + answered);
}

TEST_CASE("every message the service produces validates against the event's JSON Schema") {
  service_process service;
  for (auto body : {R"({"userId":"a","eventType":"LOGIN"})",
                    R"({"userId":"b","eventType":"PRODUCT_VIEW","payload":{"productId":"p-1","n":[1,{"x":null}]}})",
                    R"({"userId":"ü \"quoted\"\n","eventType":"LOGOUT","payload":{}})"}) {
    auto r = service.post_event(body);
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }
  auto batch = service.client().Post(
    "/events/batch", R"([{"userId":"c","eventType":"LOGIN"},{"userId":"d","eventType":"LOGOUT"}])",
    "application/json");
  REQUIRE(batch);
  REQUIRE(batch->status == 201);
  auto dir = temp_dir();
  {
    std::ofstream out{dir + "/values.jsonl"};
    out << read_all(service.broker(), "user-activity-events", "%s\\n");
  }
  auto check = run_command(
    "/usr/bin/python3 -c \"import json, sys, jsonschema\n"
    "schema = json.load(open(sys.argv[1]))\n"
    "jsonschema.Draft202012Validator.check_schema(schema)\n"
    "v = jsonschema.Draft202012Validator(schema)\n"
    "n = 0\n"
    "for line in open(sys.argv[2]):\n"
    "    for e in v.iter_errors(json.loads(line)): print(line.strip(), '->', e.message); sys.exit(1)\n"
    "    n += 1\n"
    "print(n)\" " UAS_TESTS_DIR "/../docs/schemas/user-activity-event.v1.json " + dir + "/values.jsonl");
  run_command("rm -rf " + dir);
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK(check.output == "5\n");
}

TEST_CASE("every kind of poison lands on the dead-letter topic once, bytes and headers intact, and nothing is lost while that topic is missing") {
  // A broker that answers that the dead-letter topic does not exist (librdkafka's mock broker
  // makes any topic asked for, so it is told to answer so): the consumer holds the poison's
  // positions until the topic is there.
  external_broker kafka;
  const std::string dlq = "user-activity-events.dlq";
  rd_kafka_mock_topic_set_error(kafka.broker.cluster(), dlq.c_str(),
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto service = kafka.start({{"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "100"}});
  REQUIRE(service.wait_for_line("Dead-letter topic missing"));

  auto poison = poison_corpus();
  std::vector<topic_message> messages{valid_event("30000000-0000-4000-8000-000000000001")};
  messages.insert(messages.end(), poison.begin(), poison.end());
  messages.push_back(valid_event("30000000-0000-4000-8000-000000000002"));
  REQUIRE(produce_in_order(kafka.broker.address(), messages, "poison-key"));
  auto end = static_cast<long long>(messages.size());

  // The events on either side are stored, but the group's position stops at the first poison.
  REQUIRE(service.wait_for_line("Processed event: eventId=30000000-0000-4000-8000-000000000002",
                                30s));
  REQUIRE(service.wait_for_line("Dead letter not delivered"));
  CHECK(wait_committed(kafka.broker.address(), 0, [](long long o) { return o == 1; }) == 1);
  CHECK(service.count_lines("Skipped message") == 0); // none acknowledged, so none said done

  rd_kafka_mock_topic_set_error(kafka.broker.cluster(), dlq.c_str(), RD_KAFKA_RESP_ERR_NO_ERROR);
  // Every dead letter is written now, and only then the position moves past the poison.
  CHECK(wait_committed(kafka.broker.address(), 0, [&](long long o) { return o == end; }, 60s)
        == end);
  CHECK(service.count_lines("Skipped message: reason=") == poison.size());

  auto letters = read_dead_letters(kafka.broker.address());
  REQUIRE(letters.size() == poison.size());
  std::map<long long, const dead_letter*> by_offset;
  for (auto& d : letters) {
    auto offset = std::stoll(header(d, "dlq.original.offset"));
    CHECK(by_offset.emplace(offset, &d).second); // once
  }
  for (long long offset = 1; offset < end - 1; ++offset) {
    auto& m = messages[static_cast<size_t>(offset)];
    INFO(m.kind << " at offset " << offset);
    auto found = by_offset.find(offset);
    REQUIRE(found != by_offset.end());
    auto& d = *found->second;
    CHECK(d.key == "poison-key");
    CHECK(d.value == m.value); // byte for byte, a null value null
    CHECK(header(d, "dlq.reason") == m.reason);
    CHECK_FALSE(header(d, "dlq.error").empty());
    CHECK(header(d, "dlq.original.topic") == "user-activity-events");
    CHECK(header(d, "dlq.original.partition") == "0");
    CHECK(header(d, "dlq.consumer.group") == "user-activity-consumer-group");
    // The original headers first, as they were.
    REQUIRE(d.headers.size() == m.headers.size() + 6);
    CHECK(std::vector<std::pair<std::string, std::string>>(
            d.headers.begin(), d.headers.begin() + static_cast<long>(m.headers.size()))
          == m.headers);
  }
  auto metrics = service.client().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("events_dead_lettered_total{reason=\"unknown-schema\"} 2")
        != std::string::npos);
  CHECK(metrics->body.find("events_dead_letter_failed_total 0") != std::string::npos);
  // The events around the poison are stored once.
  CHECK(service.processed().size() == 2);
}

TEST_CASE("the broker subcommand makes the dead-letter topic KAFKA_DLQ_TOPIC names, or none when it is empty") {
  // All topics' metadata (kcat -L without -t), which makes no topic on librdkafka's mock broker.
  auto topics = [](const broker_process& b) {
    return run_command("kcat -b " + b.address() + " -L").output;
  };
  broker_process named{4, {{"KAFKA_DLQ_TOPIC", "poison-kept-here"}}};
  auto listed = topics(named);
  CHECK(listed.find("topic \"poison-kept-here\" with 4 partitions") != std::string::npos);
  CHECK(listed.find("user-activity-events.dlq") == std::string::npos);

  broker_process none{4, {{"KAFKA_DLQ_TOPIC", std::string{}}}};
  listed = topics(none);
  CHECK(listed.find("topic \"user-activity-events\" with 4 partitions") != std::string::npos);
  CHECK(listed.find(".dlq") == std::string::npos);
}
