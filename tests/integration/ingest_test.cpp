// Ingest as real clients use it: batches, retries with the client's own eventId, and (for each)
// what reached the topic: nothing answered 201 may be missing from it.
#include <catch2/catch.hpp>

#include <future>
#include <map>
#include <set>
#include <sstream>

#include "core/event.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

httplib::Result post_batch(const service_process& service, const std::string& body,
                           bool gzip = false) {
  auto c = service.client();
  c.set_compress(gzip);
  return c.Post("/events/batch", body, "application/json");
}

// How often each eventId is on the topic, read whole with kcat.
std::map<std::string, int> ids_on_topic(const std::string& broker) {
  auto read = run_command("kcat -b " + broker
                          + " -C -t user-activity-events -o beginning -e -q -f '%s\\n'");
  std::map<std::string, int> ids;
  size_t start = 0;
  for (auto nl = read.output.find('\n'); nl != std::string::npos;
       start = nl + 1, nl = read.output.find('\n', start)) {
    auto value = json::parse(read.output.substr(start, nl - start), nullptr, false);
    if (value.is_object())
      ++ids[value.value("eventId", "")];
  }
  return ids;
}

// A sample from /metrics, by its full series name (`name{labels}`); -1 if absent.
double metric(const service_process& service, const std::string& series) {
  auto r = service.client().Get("/metrics");
  REQUIRE(r);
  std::stringstream lines{r->body};
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(series + " ", 0) == 0)
      return std::stod(line.substr(series.size() + 1));
  return -1;
}

std::string uuid(int n) {
  char text[40];
  std::snprintf(text, sizeof text, "3b6f1c4e-0000-4000-8000-%012d", n);
  return text;
}

json valid(int n) {
  return {{"userId", "user-" + std::to_string(n)}, {"eventType", "PRODUCT_VIEW"},
          {"payload", {{"n", n}}}};
}

} // namespace

TEST_CASE("a batch of valid events: 201 with each eventId in order, every one on the topic") {
  service_process service;
  json batch = json::array();
  for (int i = 0; i < 100; ++i)
    batch.push_back(valid(i));
  batch[7]["eventId"] = uuid(7); // a client's own eventId is kept
  auto r = post_batch(service, batch.dump());
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto results = json::parse(r->body)["results"];
  REQUIRE(results.size() == 100);
  CHECK(results[7] == json{{"eventId", uuid(7)}});
  std::set<std::string> ids;
  for (auto& result : results) {
    CHECK(result.size() == 1);
    CHECK(uas::is_uuid(result["eventId"].get<std::string>()));
    ids.insert(result["eventId"].get<std::string>());
  }
  CHECK(ids.size() == 100);
  auto on_topic = ids_on_topic(service.broker());
  for (auto& id : ids)
    CHECK(on_topic[id] == 1);
  // In order: the store holds each result's event with its own userId.
  auto events = service.wait_processed([](const json& all) { return all.size() >= 100; });
  std::map<std::string, std::string> user_of;
  for (auto& e : events)
    user_of[e["eventId"]] = e["userId"];
  for (int i = 0; i < 100; ++i)
    CHECK(user_of[results[i]["eventId"]] == "user-" + std::to_string(i));
}

TEST_CASE("a batch with invalid events: 207, each result its own, only valid events published") {
  service_process service;
  json batch = json::array({valid(1), {{"userId", ""}, {"eventType", "SIGNUP"}}, 42, valid(2),
                            {{"userId", "u"}, {"eventType", "LOGIN"}, {"eventId", "mine"}}});
  auto r = post_batch(service, batch.dump());
  REQUIRE(r);
  REQUIRE(r->status == 207);
  auto results = json::parse(r->body)["results"];
  REQUIRE(results.size() == 5);
  CHECK(results[0].contains("eventId"));
  CHECK(results[3].contains("eventId"));
  CHECK(results[1]["status"] == 400);
  std::set<std::string> fields;
  for (auto& e : results[1]["errors"])
    fields.insert(e["field"].get<std::string>());
  CHECK(fields == std::set<std::string>{"userId", "eventType"});
  CHECK(results[2] == json{{"status", 400},
                           {"errors", {{{"field", "event"},
                                        {"message", "event must be a JSON object, not number"}}}}});
  CHECK(results[4]["status"] == 400);
  CHECK(results[4]["errors"][0]["field"] == "eventId");
  auto on_topic = ids_on_topic(service.broker());
  CHECK(on_topic.size() == 2);
  CHECK(on_topic[results[0]["eventId"]] == 1);
  CHECK(on_topic[results[3]["eventId"]] == 1);
}

TEST_CASE("a batch body must be a non-empty array within BATCH_MAX_EVENTS and 5 MiB") {
  service_process service{{{"BATCH_MAX_EVENTS", "10"}}};
  auto status_of = [&](const std::string& body, bool gzip = false) {
    auto r = post_batch(service, body, gzip);
    REQUIRE(r);
    auto answer = json::parse(r->body);
    CHECK(answer["message"].is_string());
    return r->status;
  };
  json eleven = json::array();
  for (int i = 0; i < 11; ++i)
    eleven.push_back(valid(i));
  CHECK(status_of(eleven.dump()) == 400);
  CHECK(status_of("[]") == 400);
  CHECK(status_of(valid(1).dump()) == 400);
  CHECK(status_of("[{\"userId\":") == 400);
  auto r = post_batch(service, "[]");
  CHECK(json::parse(r->body)["errors"][0]["message"] == "body must hold 1 to 10 events, not 0");

  // Over 5 MiB: 413, whether sent as it is or compressed (the limit is on what it inflates to).
  json big = json::array({valid(1)});
  big[0]["payload"]["blob"] = std::string(5 * 1024 * 1024, 'x');
  CHECK(status_of(big.dump()) == 413);
  CHECK(status_of(big.dump(), true) == 413);
  CHECK(json::parse(post_batch(service, big.dump())->body)["message"]
        == "Request body exceeds 5 MiB");
  // Near 5 MiB, compressed: taken, and its events are on the topic. Each event of a batch is
  // held to a POST /events/generate body's 1 MiB.
  json near = json::array();
  for (int i = 0; i < 5; ++i) {
    near.push_back(valid(i));
    near[i]["payload"]["blob"] = std::string(1000 * 1000, 'y');
  }
  near[4]["payload"]["blob"] = std::string(1024 * 1024, 'z');
  auto taken = post_batch(service, near.dump(), true);
  REQUIRE(taken);
  REQUIRE(taken->status == 207);
  auto results = json::parse(taken->body)["results"];
  auto on_topic = ids_on_topic(service.broker());
  for (int i = 0; i < 4; ++i)
    CHECK(on_topic[results[i]["eventId"].get<std::string>()] == 1);
  CHECK(results[4] == json{{"status", 400},
                           {"errors", {{{"field", "event"}, {"message", "event exceeds 1 MiB"}}}}});
}

TEST_CASE("a batch whose events all fail at the broker: 207 with a 500 for each, none on the topic") {
  external_broker kafka;
  auto service = kafka.start({{"KAFKA_PRODUCER_RETRIES", "1"},
                              {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "100"}});
  REQUIRE(service.post_event(R"({"userId":"warm","eventType":"LOGIN"})")->status == 201);
  // Every produce request refused for good (not retried by librdkafka): both attempts fail.
  std::vector<rd_kafka_resp_err_t> refusals(50, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  rd_kafka_mock_push_request_errors_array(kafka.broker.cluster(), 0 /* Produce */,
                                          refusals.size(), refusals.data());
  json batch = json::array({valid(1), valid(2), valid(3)});
  auto r = post_batch(service, batch.dump());
  REQUIRE(r);
  REQUIRE(r->status == 207);
  auto results = json::parse(r->body)["results"];
  REQUIRE(results.size() == 3);
  for (auto& result : results)
    CHECK(result == json{{"status", 500}, {"message", "Failed to publish event"}});
  CHECK(ids_on_topic(kafka.broker.address()).size() == 1); // the warm-up alone
  CHECK(service.count_lines("Publish failed after 2 attempts") == 3);
}

TEST_CASE("a client retrying with its own eventId has its event stored once") {
  service_process service;
  auto body = json{{"eventId", uuid(42)}, {"userId", "retrier"}, {"eventType", "LOGIN"}}.dump();
  // The first answer is lost to the client (a timeout, say): it sends the same event again,
  // once on its own and once in a batch.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = service.post_event(body);
    REQUIRE(r);
    REQUIRE(r->status == 201);
    CHECK(json::parse(r->body) == json{{"eventId", uuid(42)}});
  }
  auto b = post_batch(service, "[" + body + "]");
  REQUIRE(b);
  CHECK(b->status == 201);
  CHECK(ids_on_topic(service.broker())[uuid(42)] == 3);
  // The consumer has read all three once two are found duplicates.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (service.count_lines("Duplicate event ignored: eventId=" + uuid(42)) < 2
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK(service.count_lines("Duplicate event ignored: eventId=" + uuid(42)) == 2);
  CHECK(service.processed().size() == 1);
  CHECK(service.count_lines("Processed event: eventId=" + uuid(42)) == 1);
}

TEST_CASE("beyond MAX_IN_FLIGHT events waiting on a stalled broker, new requests get 503 at once") {
  external_broker kafka;
  auto service = kafka.start({{"MAX_IN_FLIGHT", "100"}, {"BATCH_MAX_EVENTS", "100"}});
  REQUIRE(service.post_event(R"({"userId":"warm","eventType":"LOGIN"})")->status == 201);
  // The broker takes 3 s to answer anything: 100 events wait for it.
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 3000);
  json batch = json::array();
  for (int i = 0; i < 100; ++i)
    batch.push_back(valid(i));
  auto waiting = std::async(std::launch::async, [&] { return post_batch(service, batch.dump()); });
  REQUIRE(eventually([&] { return metric(service, "producer_in_flight") == 100; }, 20s, 20ms));

  auto started = std::chrono::steady_clock::now();
  auto one = service.post_event(R"({"userId":"late","eventType":"LOGIN"})");
  auto another_batch = post_batch(service, json::array({valid(1)}).dump());
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  for (auto* r : {&one, &another_batch}) {
    REQUIRE(*r);
    CHECK((*r)->status == 503);
    CHECK((*r)->get_header_value("Retry-After") == "1");
    CHECK(json::parse((*r)->body)["message"] == "Too many events waiting for the broker; retry later");
  }
  CHECK(metric(service, R"(http_requests_rejected_total{reason="in_flight_limit"})") == 2);

  // The broker recovers: the waiting batch is answered, every event on the topic, and new
  // requests are taken again.
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 0);
  auto r = waiting.get();
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto on_topic = ids_on_topic(kafka.broker.address());
  auto answer = json::parse(r->body); // alive through the loop: a temporary's member would not be
  for (auto& result : answer["results"])
    CHECK(on_topic[result["eventId"].get<std::string>()] == 1);
  CHECK(metric(service, "producer_in_flight") == 0);
  CHECK(service.post_event(R"({"userId":"later","eventType":"LOGIN"})")->status == 201);
}

TEST_CASE("while every broker is known down, POSTs get 503 at once, and 201 once one is back") {
  external_broker kafka;
  auto service = kafka.start();
  auto first = service.post_event(R"({"userId":"before","eventType":"LOGIN"})");
  REQUIRE(first);
  REQUIRE(first->status == 201);
  kafka.down();
  auto downed = std::chrono::steady_clock::now();
  // The producer learns of it: readiness names it (kafka_up turns with readiness, which may be
  // sooner, for the consumer's group).
  auto producer_cut_off = [&] {
    auto ready = service.client().Get("/health/ready");
    return ready && ready->body.find("producer cannot reach") != std::string::npos;
  };
  REQUIRE(eventually(producer_cut_off, 20s, 20ms));
  // At once, from librdkafka's all-brokers-down error, not up to a second later from its
  // statistics.
  CHECK(std::chrono::steady_clock::now() - downed < 500ms);
  auto started = std::chrono::steady_clock::now();
  auto r = service.post_event(R"({"userId":"during","eventType":"LOGIN"})");
  auto b = post_batch(service, json::array({valid(1), valid(2)}).dump());
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  for (auto* answer : {&r, &b}) {
    REQUIRE(*answer);
    CHECK((*answer)->status == 503);
    CHECK((*answer)->get_header_value("Retry-After") == "1");
    CHECK(json::parse((*answer)->body)["message"] == "Kafka brokers are unreachable; retry later");
  }
  CHECK(metric(service, R"(http_requests_rejected_total{reason="brokers_down"})") == 2);

  kafka.up();
  REQUIRE(eventually([&] { return !producer_cut_off(); }, 20s, 20ms));
  auto after = service.post_event(R"({"userId":"after","eventType":"LOGIN"})");
  REQUIRE(after);
  CHECK(after->status == 201);
  auto on_topic = ids_on_topic(kafka.broker.address());
  CHECK(on_topic[json::parse(first->body)["eventId"].get<std::string>()] == 1);
  CHECK(on_topic[json::parse(after->body)["eventId"].get<std::string>()] == 1);
}

TEST_CASE("browsers: a listed origin's preflight and POSTs are allowed, text/plain JSON is taken") {
  service_process service{{{"CORS_ALLOWED_ORIGINS", "https://shop.example.com, http://localhost:8080"}}};
  auto c = service.client();
  for (auto path : {"/events/generate", "/events/batch"}) {
    auto pre = c.Options(path, {{"Origin", "https://shop.example.com"},
                                {"Access-Control-Request-Method", "POST"},
                                {"Access-Control-Request-Headers", "content-type"}});
    REQUIRE(pre);
    CHECK(pre->status == 204);
    CHECK(pre->get_header_value("Access-Control-Allow-Origin") == "https://shop.example.com");
    CHECK_THAT(pre->get_header_value("Access-Control-Allow-Methods"), Catch::Contains("POST"));
    CHECK_THAT(pre->get_header_value("Access-Control-Allow-Headers"), Catch::Contains("Content-Type"));
    // An origin not listed gets no permission.
    auto other = c.Options(path, {{"Origin", "https://evil.example.net"},
                                  {"Access-Control-Request-Method", "POST"}});
    REQUIRE(other);
    CHECK_FALSE(other->has_header("Access-Control-Allow-Origin"));
  }
  // What navigator.sendBeacon sends: a string body as text/plain, from the page's origin.
  auto beacon = c.Post("/events/generate", {{"Origin", "http://localhost:8080"}},
                       R"({"userId":"beacon","eventType":"LOGOUT"})", "text/plain;charset=UTF-8");
  REQUIRE(beacon);
  CHECK(beacon->status == 201);
  CHECK(beacon->get_header_value("Access-Control-Allow-Origin") == "http://localhost:8080");
  auto batch = c.Post("/events/batch", {{"Origin", "http://localhost:8080"}},
                      json::array({valid(1)}).dump(), "text/plain");
  REQUIRE(batch);
  CHECK(batch->status == 201);
  // The page can read a refusal too; text/plain that is not JSON is a 400 like any such body.
  auto bad = c.Post("/events/generate", {{"Origin", "https://shop.example.com"}}, "hello", "text/plain");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->get_header_value("Access-Control-Allow-Origin") == "https://shop.example.com");
  auto unlisted = c.Post("/events/generate", {{"Origin", "https://evil.example.net"}},
                         R"({"userId":"x","eventType":"LOGIN"})", "application/json");
  REQUIRE(unlisted);
  CHECK_FALSE(unlisted->has_header("Access-Control-Allow-Origin"));
  CHECK(c.Post("/events/generate", R"({"userId":"x","eventType":"LOGIN"})", "application/xml")->status
        == 415);
  auto on_topic = ids_on_topic(service.broker());
  CHECK(on_topic[json::parse(beacon->body)["eventId"].get<std::string>()] == 1);
}

TEST_CASE("a client's timestamp is kept with the service's receivedAt beside it, on the topic and in GET") {
  service_process service;
  auto r = post_batch(service, json::array({{{"userId", "late"}, {"eventType", "LOGIN"},
                                             {"timestamp", "2026-01-02T03:04:05.678Z"}},
                                            {{"userId", "future"}, {"eventType", "LOGIN"},
                                             {"timestamp", "2999-01-01T00:00:00Z"}}})
                                 .dump());
  REQUIRE(r);
  REQUIRE(r->status == 207);
  auto results = json::parse(r->body)["results"];
  CHECK(results[1]["errors"][0]["field"] == "timestamp");
  auto id = results[0]["eventId"].get<std::string>();
  auto events = service.wait_processed([](const json& all) { return !all.empty(); });
  REQUIRE(events.size() == 1);
  CHECK(events[0]["eventId"] == id);
  CHECK(events[0]["timestamp"] == "2026-01-02T03:04:05.678Z");
  REQUIRE(events[0]["receivedAt"].is_string());
  CHECK(uas::is_utc_timestamp(events[0]["receivedAt"].get<std::string>()));
  CHECK(events[0]["receivedAt"] > events[0]["timestamp"]);
}
