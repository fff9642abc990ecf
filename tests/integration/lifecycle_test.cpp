// Consumer robustness and the lifecycle: poison on the topic, and SIGTERM under load with no acknowledged event missing from the topic.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <optional>
#include <set>

#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// Messages to produce in order, bytes exactly as they are: kcat -P sends each file it is given
// as one message; python3-kafka sends the null values, which kcat cannot.
struct message_files {
  std::string dir;
  std::vector<std::optional<std::string>> paths; // nothing: a null value

  message_files() {
    char tmpl[] = "/tmp/uas-messages-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~message_files() { run_command("rm -rf " + dir); }

  void add(const std::string& bytes) {
    auto path = dir + "/" + std::to_string(paths.size());
    std::ofstream{path, std::ios::binary} << bytes;
    paths.push_back(path);
  }
  void add_null() { paths.push_back(std::nullopt); }

  // Produces every message, in order, to partition 0.
  bool produce(const std::string& broker) const {
    auto kcat = "kcat -b " + broker + " -P -t user-activity-events -p 0";
    std::string files;
    auto flush_files = [&] {
      bool ok = files.empty() || run_command(kcat + files).status == 0;
      files.clear();
      return ok;
    };
    for (auto& p : paths) {
      if (p) {
        files += " " + *p;
        continue;
      }
      auto null_value = "/usr/bin/python3 -c \"from kafka import KafkaProducer\n"
                        "p = KafkaProducer(bootstrap_servers='" + broker + "', api_version=(2, 5, 0))\n"
                        "p.send('user-activity-events', key=b'k', value=None, partition=0).get(timeout=10)\"";
      if (!flush_files() || run_command(null_value).status != 0)
        return false;
    }
    return flush_files();
  }
};

std::string valid(const std::string& id) {
  return event_text(id, "user-" + id, "LOGIN");
}

std::string with(const std::string& field_json) {
  // A valid event with one field overridden or added.
  auto e = json::parse(valid("00000000-0000-4000-8000-000000000000"));
  auto patch = json::parse(field_json);
  for (auto& [k, v] : patch.items())
    e[k] = v;
  return e.dump();
}

std::string without(const std::string& field) {
  auto e = json::parse(valid("00000000-0000-4000-8000-000000000000"));
  e.erase(field);
  return e.dump();
}

std::set<std::string> ids_of(const json& events) {
  std::set<std::string> ids;
  for (auto& e : events)
    ids.insert(e["eventId"].get<std::string>());
  return ids;
}

} // namespace

TEST_CASE("every kind of poison message is skipped and the messages after it are processed") {
  service_process service;
  message_files messages;
  std::vector<std::pair<std::string, std::string>> poison = {
    {"not JSON", "this is not json"},
    {"bytes that are not UTF-8", "{\"eventId\":\"\xff\xfe\xfd\",\"userId\":\"u\"}"},
    {"an array", "[1,2,3]"},
    {"a string", "\"LOGIN\""},
    {"a number", "12345"},
    {"JSON null", "null"},
    {"missing eventId", without("eventId")},
    {"missing userId", without("userId")},
    {"missing eventType", without("eventType")},
    {"missing timestamp", without("timestamp")},
    {"eventId of the wrong type", with(R"({"eventId":42})")},
    {"userId of the wrong type", with(R"({"userId":{"id":1}})")},
    {"empty eventId", with(R"({"eventId":""})")},
    {"eventId that is not a UUID", with(R"({"eventId":"not-a-uuid"})")},
    {"empty userId", with(R"({"userId":""})")},
    {"unknown eventType", with(R"({"eventType":"SIGNUP"})")},
    {"null payload", with(R"({"payload":null})")},
    {"array payload", with(R"({"payload":[1,2]})")},
    {"hundreds of kilobytes", with(R"({"userId":")" + std::string(400'000, 'x') + "\", \"eventType\": 7}")},
    {"deep nesting", std::string(200'000, '[') + std::string(200'000, ']')},
  };
  messages.add(valid("10000000-0000-4000-8000-000000000001"));
  for (auto& [kind, bytes] : poison)
    messages.add(bytes);
  messages.add_null();
  poison.push_back({"a null value", ""});
  messages.add(valid("10000000-0000-4000-8000-000000000002"));
  messages.add(valid("10000000-0000-4000-8000-000000000001")); // a duplicate, after the poison
  messages.add(valid("10000000-0000-4000-8000-000000000003"));
  REQUIRE(messages.produce(service.broker()));

  auto events = service.wait_processed([](const json& all) { return all.size() >= 3; });
  CHECK(ids_of(events) == std::set<std::string>{"10000000-0000-4000-8000-000000000001",
                                                "10000000-0000-4000-8000-000000000002",
                                                "10000000-0000-4000-8000-000000000003"});
  REQUIRE(service.wait_for_line("Duplicate event ignored: eventId=10000000-0000-4000-8000-000000000001"));
  CHECK(service.processed().size() == 3);
  // One skip line per poison message, each naming where it sits.
  CHECK(service.count_lines("Skipped message: reason=") == poison.size());
  auto skipped_at = [&](size_t offset) {
    auto where = "topic=user-activity-events, partition=0, offset=" + std::to_string(offset) + ",";
    for (auto& line : service.lines())
      if (line.find("Skipped message") != std::string::npos
          && line.find(where) != std::string::npos)
        return true;
    return false;
  };
  for (size_t offset = 1; offset <= poison.size(); ++offset) {
    INFO(poison[offset - 1].first);
    CHECK(skipped_at(offset));
  }
  // And the service still answers.
  auto r = service.post_event(R"({"userId":"after","eventType":"LOGOUT"})");
  REQUIRE(r);
  CHECK(r->status == 201);
}

TEST_CASE("SIGTERM under concurrent POST load loses no acknowledged event") {
  external_broker kafka;
  auto service = kafka.start();
  std::mutex mutex;
  std::set<std::string> acknowledged;
  std::atomic<int> unavailable{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      auto c = service.client();
      c.set_connection_timeout(1, 0);
      for (int i = 0; !stop; ++i) {
        auto r = c.Post("/events/generate",
                        R"({"userId":"load-)" + std::to_string(t) + R"(","eventType":"PRODUCT_VIEW"})",
                        "application/json");
        if (!r)
          break; // the server closed: shutdown is past the HTTP stage
        if (r->status == 201) {
          std::lock_guard<std::mutex> guard{mutex};
          acknowledged.insert(json::parse(r->body)["eventId"].get<std::string>());
        } else if (r->status == 503) {
          ++unavailable;
        } else {
          ++failed;
        }
      }
    });
  std::this_thread::sleep_for(1500ms);
  auto signalled = std::chrono::steady_clock::now();
  int status = service.stop(SIGTERM, 15s);
  auto took = std::chrono::steady_clock::now() - signalled;
  stop = true;
  for (auto& c : clients)
    c.join();

  CHECK(status == 0);
  CHECK(took < 10s);
  CHECK(failed == 0);
  REQUIRE(acknowledged.size() > 50);
  // Every eventId answered 201 is on the topic.
  std::set<std::string> on_topic;
  std::stringstream lines{kafka.read_topic()};
  std::string line;
  while (std::getline(lines, line))
    on_topic.insert(json::parse(line.substr(line.find('\t') + 1))["eventId"].get<std::string>());
  std::vector<std::string> missing;
  for (auto& id : acknowledged)
    if (!on_topic.count(id))
      missing.push_back(id);
  CHECK(missing.empty());
  for (auto step : {"Shutdown requested", "HTTP requests drained", "HTTP server stopped",
                    "Producer flushed", "Consumer closed", "Shutdown complete"})
    CHECK(service.count_lines(step) == 1);
}

TEST_CASE("SIGTERM during a broker outage answers the waiting POST 503 and exits 0 in time") {
  external_broker kafka;
  auto service = kafka.start();
  REQUIRE(service.post_event(R"({"userId":"u","eventType":"LOGIN"})")->status == 201);
  kafka.down();
  // With the default 30 s per attempt, this publish would wait far longer than a shutdown may.
  auto pending = std::async(std::launch::async, [&] {
    return service.post_event(R"({"userId":"u","eventType":"LOGOUT"})");
  });
  std::this_thread::sleep_for(500ms);
  auto signalled = std::chrono::steady_clock::now();
  CHECK(service.stop(SIGTERM, 15s) == 0);
  CHECK(std::chrono::steady_clock::now() - signalled < 10s);
  auto r = pending.get();
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(service.count_lines("HTTP requests drained: unanswered=1") == 1);
}
