// The store actor: one event per eventId, processing order kept, every operation answered.
#include <catch2/catch.hpp>

#include "actors/store_actor.hpp"
#include "harness.hpp"

using namespace uas;
using namespace uas::testing;

namespace {

event make_event(std::string id, std::string user = "u1", std::string type = "LOGIN") {
  return {std::move(id), std::move(user), std::move(type), "2026-11-24T01:52:00.047Z", "{}"};
}

} // namespace

TEST_CASE_METHOD(actor_fixture, "the store keeps the first event of each eventId, in order") {
  auto s = spawn(store);
  CHECK(ask<bool>(s, add_if_new_atom::value, make_event("a", "alice")));
  CHECK(ask<bool>(s, add_if_new_atom::value, make_event("b")));
  // The same eventId again, even with different content, is a duplicate: the first one stays.
  CHECK_FALSE(ask<bool>(s, add_if_new_atom::value, make_event("a", "mallory", "LOGOUT")));
  CHECK(ask<bool>(s, add_if_new_atom::value, make_event("c")));

  auto all = ask<std::vector<event>>(s, get_all_atom::value);
  REQUIRE(all.size() == 3);
  CHECK(all[0] == make_event("a", "alice"));
  CHECK(all[1].event_id == "b");
  CHECK(all[2].event_id == "c");
  CHECK(ask<uint64_t>(s, count_atom::value) == 3);
  CHECK(ask<bool>(s, has_atom::value, std::string{"b"}));
  CHECK_FALSE(ask<bool>(s, has_atom::value, std::string{"z"}));
}

TEST_CASE_METHOD(actor_fixture, "clearing the store forgets events and their ids") {
  auto s = spawn(store);
  ask<bool>(s, add_if_new_atom::value, make_event("a"));
  ask<ok_atom>(s, clear_atom::value);
  CHECK(ask<uint64_t>(s, count_atom::value) == 0);
  CHECK(ask<std::vector<event>>(s, get_all_atom::value).empty());
  CHECK_FALSE(ask<bool>(s, has_atom::value, std::string{"a"}));
  // After a clear the id is new again.
  CHECK(ask<bool>(s, add_if_new_atom::value, make_event("a")));
}

TEST_CASE_METHOD(actor_fixture, "deduplication holds over many events with short and long ids") {
  auto s = spawn(store);
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < 2000; ++i) {
      // Short ids live inside the string object; long ones on the heap. Both must stay found.
      auto id = i % 2 ? std::to_string(i) : "event-id-long-enough-" + std::to_string(i);
      CHECK(ask<bool>(s, add_if_new_atom::value, make_event(id)) == (round == 0));
    }
  CHECK(ask<uint64_t>(s, count_atom::value) == 2000);
}

TEST_CASE_METHOD(actor_fixture, "a batch is stored event by event, in order, duplicates within it too") {
  auto s = spawn(store);
  ask<bool>(s, add_if_new_atom::value, make_event("a"));
  auto added = ask<std::vector<bool>>(
    s, add_if_new_atom::value,
    std::make_shared<const std::vector<event>>(
      std::vector<event>{make_event("b"), make_event("a"), make_event("c"), make_event("b")}));
  CHECK(added == std::vector<bool>{true, false, true, false});
  CHECK(ask<uint64_t>(s, count_atom::value) == 3);
}

TEST_CASE_METHOD(actor_fixture, "the JSON view is every event's JSON, in order") {
  auto s = spawn(store);
  CHECK(ask<shared_text>(s, get_json_atom::value).str() == "[]");
  // An eventId that needs escaping in JSON is still found by its own text.
  auto odd = make_event("id \"quoted\"", "u\\v");
  for (auto& e : {make_event("a"), odd, make_event("b")})
    ask<bool>(s, add_if_new_atom::value, e);
  CHECK_FALSE(ask<bool>(s, add_if_new_atom::value, odd));
  CHECK(ask<bool>(s, has_atom::value, odd.event_id));
  auto json = ask<shared_text>(s, get_json_atom::value).str();
  CHECK(json == "[" + to_json(make_event("a")) + "," + to_json(odd) + "," + to_json(make_event("b")) + "]");
  auto all = ask<std::vector<event>>(s, get_all_atom::value);
  REQUIRE(all.size() == 3);
  CHECK(all[1] == odd);
}

TEST_CASE_METHOD(actor_fixture, "events of any size stay whole, however many are stored") {
  auto s = spawn(store);
  // Small events fill the store's text blocks; a payload near the 1 MiB body limit is larger
  // than one block.
  auto big = make_event("big");
  big.payload = R"({"blob":")" + std::string(900 * 1024, 'x') + R"("})";
  std::vector<event> expected;
  for (int i = 0; i < 3000; ++i) {
    expected.push_back(i == 1500 ? big : make_event("e" + std::to_string(i)));
    REQUIRE(ask<bool>(s, add_if_new_atom::value, expected.back()));
  }
  CHECK_FALSE(ask<bool>(s, add_if_new_atom::value, big));
  auto all = ask<std::vector<event>>(s, get_all_atom::value);
  REQUIRE(all.size() == expected.size());
  CHECK(all.front() == expected.front());
  CHECK(all[1500] == big);
  CHECK(all.back() == expected.back());
  CHECK(all == expected);
  std::string array = "[";
  for (auto& e : expected)
    array += (array.size() > 1 ? "," : "") + to_json(e);
  CHECK(ask<shared_text>(s, get_json_atom::value).str() == array + "]");
}

TEST_CASE_METHOD(actor_fixture, "a JSON view taken before the store is cleared still reads as taken") {
  auto s = spawn(store);
  ask<bool>(s, add_if_new_atom::value, make_event("a"));
  auto before = ask<shared_text>(s, get_json_atom::value);
  ask<ok_atom>(s, clear_atom::value);
  CHECK(ask<shared_text>(s, get_json_atom::value).str() == "[]");
  ask<bool>(s, add_if_new_atom::value, make_event("b"));
  CHECK(before.str() == "[" + to_json(make_event("a")) + "]");
  CHECK(ask<shared_text>(s, get_json_atom::value).str() == "[" + to_json(make_event("b")) + "]");
}
