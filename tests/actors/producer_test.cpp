// The producer actor: a publish is answered once the client reports delivery; a failed attempt
// is retried after retry n x backoff of virtual time, and answered with an error after the last.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "actors/producer_actor.hpp"
#include "harness.hpp"

using namespace uas;
using namespace uas::testing;
using namespace std::chrono_literals;

namespace {

event make_event(std::string id, std::string user = "alice") {
  return {std::move(id), std::move(user), "PRODUCT_VIEW", "2026-11-24T01:52:00.047Z",
          R"({"productId":"p-1"})"};
}

struct producer_fixture : actor_fixture {
  std::shared_ptr<fake_producer_client> client = std::make_shared<fake_producer_client>();

  producer_actor spawn_producer(int retries, std::chrono::milliseconds backoff) {
    return spawn(producer, std::static_pointer_cast<kafka::producer_client>(client),
                     retry_policy{retries, backoff});
  }

  std::shared_ptr<answer<ok_atom>> publish(const producer_actor& p, event e) {
    return request<ok_atom>(p, publish_atom::value, std::move(e));
  }
};

} // namespace

TEST_CASE_METHOD(producer_fixture, "a publish is answered only once the broker acknowledged it") {
  auto p = spawn_producer(3, 500ms);
  auto result = publish(p, make_event("e1"));
  REQUIRE(client->produced.size() == 1);
  // The record on the topic: the event's JSON as value, userId as key.
  CHECK(client->produced[0].key == "alice");
  auto value = nlohmann::json::parse(client->produced[0].value);
  CHECK(value["eventId"] == "e1");
  CHECK(value["payload"]["productId"] == "p-1");
  CHECK_FALSE(result->arrived);

  client->acknowledge(0);
  run();
  CHECK(result->arrived);
  CHECK(result->value.has_value());
}

TEST_CASE_METHOD(producer_fixture, "failed attempts are retried after 1, 2, 3 x backoff") {
  auto p = spawn_producer(3, 500ms);
  client->script({"Broker: Not enough in-sync replicas", "Local: Message timed out",
                  "Local: Message timed out"});
  auto result = publish(p, make_event("e1"));
  // Attempt 1 failed at once; the retry waits exactly 500 ms of virtual time.
  CHECK(client->produced.size() == 1);
  advance(499ms);
  CHECK(client->produced.size() == 1);
  advance(1ms);
  CHECK(client->produced.size() == 2); // attempt 2 failed; next after 1000 ms
  advance(999ms);
  CHECK(client->produced.size() == 2);
  advance(1ms);
  CHECK(client->produced.size() == 3); // attempt 3 failed; next after 1500 ms
  advance(1499ms);
  CHECK(client->produced.size() == 3);
  advance(1ms);
  REQUIRE(client->produced.size() == 4); // attempt 4 is left pending: the broker takes it
  CHECK(client->produced[3].value == client->produced[0].value);
  CHECK_FALSE(result->arrived);
  client->acknowledge(3);
  run();
  CHECK(result->value.has_value());
}

TEST_CASE_METHOD(producer_fixture, "k failures with k <= retries still end in success") {
  for (int k = 0; k <= 3; ++k) {
    std::vector<std::string> failures(k, "Broker: Request timed out");
    failures.push_back("");
    client->script(failures);
    auto result = publish(spawn_producer(3, 100ms), make_event("e" + std::to_string(k)));
    run_all_timeouts();
    CHECK(result->value.has_value());
  }
  CHECK(client->produced.size() == 1 + 2 + 3 + 4);
}

TEST_CASE_METHOD(producer_fixture, "after retries + 1 failures the publish is answered an error") {
  auto p = spawn_producer(3, 500ms);
  client->script({"a", "b", "c", "Local: Message timed out"});
  auto result = publish(p, make_event("e1"));
  advance(500ms);
  advance(1000ms);
  advance(1499ms);
  CHECK(client->produced.size() == 3);
  CHECK_FALSE(result->arrived); // the last attempt has not happened yet
  advance(1ms);
  CHECK(client->produced.size() == 4);
  REQUIRE(result->arrived);
  CHECK_FALSE(result->value.has_value());
  // A publish error of its own kind, with the broker's last error as its detail.
  CHECK_THAT(result->error, Catch::StartsWith("publish failed after every attempt")
                              && Catch::Contains("Message timed out"));
  // No fifth attempt, ever.
  advance(1h);
  CHECK(client->produced.size() == 4);
}

TEST_CASE_METHOD(producer_fixture, "zero retries means one attempt") {
  auto p = spawn_producer(0, 500ms);
  client->script({"Broker: Leader not available"});
  auto result = publish(p, make_event("e1"));
  REQUIRE(result->arrived);
  CHECK(result->error.find("Leader not available") != std::string::npos);
  advance(1h);
  CHECK(client->produced.size() == 1);
}

TEST_CASE_METHOD(producer_fixture, "events backing off do not hold up other publishes") {
  auto p = spawn_producer(2, 1000ms);
  client->script({"down"});
  auto slow = publish(p, make_event("slow", "bob"));
  // While "slow" waits out its backoff, three more publishes go through at once.
  auto a = publish(p, make_event("a"));
  auto b = publish(p, make_event("b"));
  REQUIRE(client->produced.size() == 3);
  client->acknowledge(1);
  client->acknowledge(2);
  run();
  CHECK(a->value.has_value());
  CHECK(b->value.has_value());
  CHECK_FALSE(slow->arrived);

  // A second event starts failing half-way through the first one's backoff.
  client->script({"down"});
  advance(500ms);
  auto c = publish(p, make_event("c", "carol"));
  REQUIRE(client->produced.size() == 4);
  advance(500ms); // "slow" retries now; "c" at 1500 ms
  REQUIRE(client->produced.size() == 5);
  CHECK(nlohmann::json::parse(client->produced[4].value)["eventId"] == "slow");
  client->acknowledge(4);
  advance(499ms);
  CHECK(slow->value.has_value());
  CHECK(client->produced.size() == 5);
  advance(1ms);
  REQUIRE(client->produced.size() == 6);
  CHECK(nlohmann::json::parse(client->produced[5].value)["eventId"] == "c");
  client->acknowledge(5);
  run();
  CHECK(c->value.has_value());
}

TEST_CASE_METHOD(producer_fixture,
                 "a batch is one message: answered once every event is settled, each in order") {
  auto p = spawn_producer(1, 100ms);
  auto events = std::make_shared<std::vector<event>>(
    std::vector<event>{make_event("b1", "ann"), make_event("b2", "ben"), make_event("b3", "cy")});
  auto result = request<batch_outcome>(p, publish_atom::value, event_batch{events});
  // Every event handed to the client at once, each keyed by its userId.
  REQUIRE(client->produced.size() == 3);
  CHECK(client->produced[1].key == "ben");
  CHECK(nlohmann::json::parse(client->produced[2].value)["eventId"] == "b3");
  client->acknowledge(2);
  client->fail(1, "Broker: Not enough in-sync replicas");
  run();
  CHECK_FALSE(result->arrived);
  // b2 retries on its own after the backoff, and fails for good; b1 is acknowledged last.
  advance(100ms);
  REQUIRE(client->produced.size() == 4);
  CHECK(nlohmann::json::parse(client->produced[3].value)["eventId"] == "b2");
  client->fail(3, "Local: Message timed out");
  run();
  CHECK_FALSE(result->arrived);
  client->acknowledge(0);
  run();
  REQUIRE(result->value.has_value());
  CHECK(*result->value == batch_outcome{"", "Local: Message timed out", ""});
}
