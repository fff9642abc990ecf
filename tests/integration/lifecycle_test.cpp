// Consumer robustness and the lifecycle: poison on the topic, and SIGTERM under load with no acknowledged event missing from the topic.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <optional>
#include <set>

#include "poison_corpus.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

std::set<std::string> ids_of(const json& events) {
  std::set<std::string> ids;
  for (auto& e : events)
    ids.insert(e["eventId"].get<std::string>());
  return ids;
}

} // namespace

TEST_CASE("without a dead-letter topic every kind of poison message is skipped and the messages after it are processed") {
  service_process service{std::map<std::string, std::string>{{"KAFKA_DLQ_TOPIC", std::string{}}}};
  auto poison = poison_corpus();
  std::vector<topic_message> messages{valid_event("10000000-0000-4000-8000-000000000001")};
  messages.insert(messages.end(), poison.begin(), poison.end());
  messages.push_back(valid_event("10000000-0000-4000-8000-000000000002"));
  messages.push_back(valid_event("10000000-0000-4000-8000-000000000001")); // a duplicate, after the poison
  messages.push_back(valid_event("10000000-0000-4000-8000-000000000003"));
  REQUIRE(produce_in_order(service.broker(), messages, "k"));

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
    INFO(poison[offset - 1].kind);
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
  // A broker that stopped answering: its connection stays up, so the POST is taken and waits (one
  // known to be down is answered 503 at once). With the default 30 s per attempt, this publish
  // would wait far longer than a shutdown may.
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 60000);
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
