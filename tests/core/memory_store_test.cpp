// The memory store: one event per eventId in processing order, pages and filters over them, the
// bound that lets the oldest go, erasure and expiry.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/memory_store.hpp"
#include "core/metrics.hpp"

using namespace uas;

namespace {

event make_event(std::string id, std::string user = "u1", std::string type = "LOGIN") {
  return {std::move(id), std::move(user), std::move(type), "2026-11-24T01:52:00.047Z", "{}"};
}

std::vector<write_status> add(memory_store& store, std::vector<event> events) {
  std::vector<kafka::partition_offset> origins(events.size());
  std::vector<write_status> statuses;
  auto outcomes = store.add_if_new(events, origins, {});
  for (auto& o : *outcomes)
    statuses.push_back(o.status);
  return statuses;
}

bool add_one(memory_store& store, const event& e) {
  return add(store, {e}).front() == write_status::added;
}

std::string read_json(memory_store& store, event_query q = {}) {
  return store.read(q)->json.str();
}

std::vector<std::string> ids(memory_store& store, event_query q = {}) {
  std::vector<std::string> result;
  for (auto& e : nlohmann::json::parse(read_json(store, q)))
    result.push_back(e["eventId"]);
  return result;
}

std::string array_of(const std::vector<event>& events) {
  std::string array = "[";
  for (auto& e : events)
    array += (array.size() > 1 ? "," : "") + to_json(e);
  return array + "]";
}

} // namespace

TEST_CASE("the memory store keeps the first event of each eventId, in order") {
  memory_store store;
  CHECK(read_json(store) == "[]");
  CHECK(add_one(store, make_event("a", "alice")));
  CHECK(add_one(store, make_event("b")));
  // The same eventId again, even with different content, is a duplicate: the first one stays.
  CHECK_FALSE(add_one(store, make_event("a", "mallory", "LOGOUT")));
  CHECK(add(store, {make_event("c"), make_event("c"), make_event("b")})
        == std::vector<write_status>{write_status::added, write_status::duplicate,
                                     write_status::duplicate});
  CHECK(read_json(store) == array_of({make_event("a", "alice"), make_event("b"), make_event("c")}));
  CHECK(store.size() == 3);
}

TEST_CASE("deduplication holds over many events with short, long and escaped ids") {
  memory_store store;
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 3000; ++i) {
      auto id = i % 3 == 0   ? std::to_string(i)
                : i % 3 == 1 ? "event-id-long-enough-" + std::to_string(i)
                             : "id \"quoted\" \\ " + std::to_string(i);
      CHECK(add_one(store, make_event(id)) == (round == 0));
    }
  CHECK(store.size() == 3000);
  CHECK(*store.find("id \"quoted\" \\ 2") == to_json(make_event("id \"quoted\" \\ 2")));
}

TEST_CASE("events of any size stay whole, however many are stored") {
  memory_store store;
  // Small events fill the store's text blocks; a payload near the 1 MiB body limit is larger
  // than one block.
  auto big = make_event("big");
  big.payload = R"({"blob":")" + std::string(900 * 1024, 'x') + R"("})";
  std::vector<event> expected;
  for (int i = 0; i < 3000; ++i) {
    expected.push_back(i == 1500 ? big : make_event("e" + std::to_string(i)));
    REQUIRE(add_one(store, expected.back()));
  }
  CHECK_FALSE(add_one(store, big));
  CHECK(read_json(store) == array_of(expected));
}

TEST_CASE("a view taken before the store changes still reads as taken") {
  memory_store store;
  add_one(store, make_event("a", "alice"));
  auto before = store.read({})->json;
  store.erase_user("alice");
  add_one(store, make_event("b"));
  CHECK(before.str() == array_of({make_event("a", "alice")}));
  CHECK(read_json(store) == array_of({make_event("b")}));
}

TEST_CASE("pages follow each other by cursor, each event once, in order") {
  memory_store store;
  std::vector<std::string> all;
  for (int i = 0; i < 25; ++i) {
    all.push_back("e" + std::to_string(i));
    add_one(store, make_event(all.back()));
  }
  std::vector<std::string> seen;
  event_query q;
  q.limit = 10;
  int pages = 0;
  while (true) {
    auto page = store.read(q);
    ++pages;
    for (auto& e : nlohmann::json::parse(page->json.str()))
      seen.push_back(e["eventId"]);
    if (page->next == 0)
      break;
    q.after = page->next;
  }
  CHECK(pages == 3);
  CHECK(seen == all);
  // A page that ends exactly at the last event says there is no next one.
  q = {};
  q.limit = 25;
  CHECK(store.read(q)->next == 0);
  q.limit = 24;
  CHECK(store.read(q)->next != 0);
}

TEST_CASE("filters select by userId and eventType, pages within them") {
  memory_store store;
  add(store, {make_event("1", "alice"), make_event("2", "bob", "LOGOUT"),
              make_event("3", "alice", "PRODUCT_VIEW"), make_event("4", "a\"lice"),
              make_event("5", "alice", "LOGOUT"), make_event("6", "bob")});
  event_query q;
  q.user_id = "alice";
  CHECK(ids(store, q) == std::vector<std::string>{"1", "3", "5"});
  q.event_type = "LOGOUT";
  CHECK(ids(store, q) == std::vector<std::string>{"5"});
  q = {};
  q.user_id = "a\"lice"; // a userId JSON escapes is matched as it is
  CHECK(ids(store, q) == std::vector<std::string>{"4"});
  q = {};
  q.event_type = "LOGIN";
  q.limit = 2;
  auto first = store.read(q);
  CHECK(nlohmann::json::parse(first->json.str()).size() == 2);
  q.after = first->next;
  CHECK(ids(store, q) == std::vector<std::string>{"6"});
  CHECK(store.read(q)->next == 0);
  q = {};
  q.user_id = "nobody";
  CHECK(read_json(store, q) == "[]");
}

TEST_CASE("one event by its eventId, or not found") {
  memory_store store;
  add_one(store, make_event("a"));
  CHECK(*store.find("a") == to_json(make_event("a")));
  auto missing = store.find("b");
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == store_error::not_found);
}

TEST_CASE("beyond its bound the memory store lets the oldest events go, from view and deduplication") {
  memory_store store{3};
  auto dropped = metrics::global().store_events_dropped.get();
  for (auto id : {"a", "b", "c", "d", "e"})
    add_one(store, make_event(id, "user-" + std::string(300, 'x')));
  CHECK(store.size() == 3);
  CHECK(ids(store) == std::vector<std::string>{"c", "d", "e"});
  CHECK(metrics::global().store_events_dropped.get() == dropped + 2);
  // "a" left deduplication with the view: it is new again, and "c" leaves for it.
  CHECK_FALSE(add_one(store, make_event("d")));
  CHECK(add_one(store, make_event("a")));
  CHECK(ids(store) == std::vector<std::string>{"d", "e", "a"});
  CHECK_FALSE(store.find("c"));
  // Many times the bound over: the index and the text blocks keep up.
  memory_store small{1000};
  for (int i = 0; i < 50'000; ++i)
    REQUIRE(add_one(small, make_event("e" + std::to_string(i))));
  CHECK(small.size() == 1000);
  auto kept = ids(small);
  CHECK(kept.front() == "e49000");
  CHECK(kept.back() == "e49999");
  for (int i = 49'000; i < 50'000; ++i)
    REQUIRE_FALSE(add_one(small, make_event("e" + std::to_string(i))));
  CHECK(add_one(small, make_event("e0")));
}

TEST_CASE("erasing a user removes their events and keeps the others' order and cursors") {
  memory_store store;
  add(store, {make_event("1", "alice"), make_event("2", "bob"), make_event("3", "alice"),
              make_event("4", "carol")});
  event_query q;
  q.limit = 1;
  auto first = store.read(q);
  CHECK(*store.erase_user("alice") == 2);
  CHECK(*store.erase_user("alice") == 0);
  CHECK(ids(store) == std::vector<std::string>{"2", "4"});
  // A cursor taken before still leads on to the events after it.
  q.after = first->next;
  q.limit = 10;
  CHECK(ids(store, q) == std::vector<std::string>{"2", "4"});
  // An erased eventId is new again.
  CHECK(add_one(store, make_event("1", "alice")));
  CHECK(ids(store) == std::vector<std::string>{"2", "4", "1"});
}

TEST_CASE("expiry removes the events stored before the cutoff, oldest first, at most as asked") {
  using namespace std::chrono;
  auto now = system_clock::time_point{} + hours{1000};
  memory_store store{100, [&] { return now; }};
  add(store, {make_event("old1"), make_event("old2"), make_event("old3")});
  now += hours{48};
  add_one(store, make_event("new"));
  CHECK(*store.expire(now - hours{24}, 2) == 2);
  CHECK(ids(store) == std::vector<std::string>{"old3", "new"});
  CHECK(*store.expire(now - hours{24}, 100) == 1);
  CHECK(*store.expire(now - hours{24}, 100) == 0);
  CHECK(ids(store) == std::vector<std::string>{"new"});
}
