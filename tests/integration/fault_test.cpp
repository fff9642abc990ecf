// Broker trouble, injected into a Kafka-protocol broker that the test owns (librdkafka's mock
// cluster, the same one the service embeds), with the service pointed at it as at any external
// broker.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>

#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// How often an eventId appears in GET /events/processed's answer.
int occurrences(const json& events, const std::string& id) {
  int n = 0;
  for (auto& e : events)
    n += e["eventId"] == id;
  return n;
}

const std::string login = R"({"userId":"u1","eventType":"LOGIN"})";

} // namespace

TEST_CASE("the service runs against an external broker, where kcat sees its events") {
  external_broker kafka;
  auto service = kafka.start();
  CHECK(service.wait_for_line("brokers=" + kafka.broker.address()));
  CHECK(service.count_lines("Embedded Kafka broker started") == 0);
  auto r = service.post_event(login);
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto id = json::parse(r->body)["eventId"];
  auto read = kafka.read_topic();
  CHECK(read.substr(0, 3) == "u1\t");
  CHECK(json::parse(read.substr(3))["eventId"] == id);
  auto events = service.wait_processed([](const json& all) { return !all.empty(); });
  REQUIRE(events.size() == 1);
  CHECK(events[0]["eventId"] == id);
}

TEST_CASE("a transient broker outage still ends in 201 after a retry") {
  external_broker kafka;
  auto service = kafka.start({{"KAFKA_REQUEST_TIMEOUT_MS", "1000"},
                              {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "300"},
                              {"KAFKA_PRODUCER_RETRIES", "5"}});
  // Warm up: the producer has its connection and metadata.
  REQUIRE(service.post_event(login)->status == 201);
  // The POST is taken while the broker still looks up (it stalls, its connection open), then the
  // broker goes down with the event in flight: attempts fail until it is back, and a retry then
  // succeeds. (A POST that comes while the broker is known to be down is answered 503 at once.)
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 60000);
  auto pending = std::async(std::launch::async, [&] { return service.post_event(login); });
  std::this_thread::sleep_for(300ms); // ample for a local POST to be taken
  kafka.down();
  std::this_thread::sleep_for(1500ms);
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 0);
  kafka.up();
  auto r = pending.get();
  REQUIRE(r);
  CHECK(r->status == 201);
  auto retried = service.wait_for_line("Publish attempt 1 of 6 failed", 1s);
  REQUIRE(retried);
  CHECK_THAT(*retried, Catch::Contains("retrying in 300 ms"));
  // The event made it all the way through, once.
  auto id = json::parse(r->body)["eventId"].get<std::string>();
  auto events = service.wait_processed([&](const json& all) { return occurrences(all, id) > 0; });
  CHECK(occurrences(events, id) == 1);
}

TEST_CASE("an outage ends in 500 within the bound while /health answers throughout") {
  external_broker kafka;
  // Two attempts of 1 s each with 200 ms between them: about 2.2 s.
  auto service = kafka.start({{"KAFKA_REQUEST_TIMEOUT_MS", "1000"},
                              {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "200"},
                              {"KAFKA_PRODUCER_RETRIES", "1"}});
  REQUIRE(service.post_event(login)->status == 201);
  // The broker stops answering but keeps its connections: a broker known to be down would have
  // the POST answered 503 at once (backpressure), before any attempt.
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 10000);
  auto started = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] { return service.post_event(login); });

  // Meanwhile health and reads answer at once.
  auto c = service.client();
  int health_checks = 0;
  while (pending.wait_for(100ms) != std::future_status::ready) {
    auto t0 = std::chrono::steady_clock::now();
    auto h = c.Get("/health");
    REQUIRE(h);
    CHECK(h->status == 200);
    auto p = c.Get("/events/processed");
    REQUIRE(p);
    CHECK(p->status == 200);
    CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
    ++health_checks;
  }
  auto r = pending.get();
  auto elapsed = std::chrono::steady_clock::now() - started;
  CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  REQUIRE(r);
  CHECK(r->status == 500);
  CHECK(json::parse(r->body) == json{{"message", "Failed to publish event"}});
  CHECK(elapsed >= 2s);
  CHECK(elapsed < 5s); // librdkafka checks message timeouts once a second
  CHECK(health_checks >= 10);
  auto failed = service.wait_for_line("Publish failed after 2 attempts", 1s);
  REQUIRE(failed);
  // The line names the trace the 500 was answered in, so the two can be found together.
  CHECK(failed->find("traceId=" + r->get_header_value("traceparent").substr(3, 32))
        != std::string::npos);
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 0);
}
