// The store actor: each request answered from its back end, the back end's failures passed on
// as typed store errors, and old events expired and the database probed on schedules of delayed
// messages to itself.
#include <catch2/catch.hpp>

#include "actors/store_actor.hpp"
#include "harness.hpp"

using namespace uas;
using namespace uas::testing;
using namespace std::chrono_literals;

namespace {

std::string uuid(int n) {
  auto tail = std::to_string(n);
  return "00000000-0000-4000-8000-" + std::string(12 - tail.size(), '0') + tail;
}

event make_event(int n, std::string user = "u1", std::string type = "LOGIN") {
  return {uuid(n), std::move(user), std::move(type), "2026-11-24T01:52:00.047Z", "{}"};
}

event_batch batch_of(std::vector<event> events) {
  return std::make_shared<const std::vector<event>>(std::move(events));
}

origin_batch origins_for(size_t n) {
  std::vector<kafka::partition_offset> origins;
  for (size_t i = 0; i < n; ++i)
    origins.push_back({"user-activity-events", 0, static_cast<int64_t>(i)});
  return std::make_shared<const std::vector<kafka::partition_offset>>(std::move(origins));
}

struct store_fixture : actor_fixture {
  std::shared_ptr<fake_store_backend> backend = std::make_shared<fake_store_backend>();

  store_actor spawn_store(std::chrono::hours retention = 0h) {
    return spawn(store, std::static_pointer_cast<store_backend>(backend), retention);
  }

  std::vector<write_outcome> add(const store_actor& s, std::vector<event> events) {
    auto n = events.size();
    return ask<std::vector<write_outcome>>(s, add_if_new_atom::value, batch_of(std::move(events)),
                                           origins_for(n), origins_for(0));
  }
};

std::vector<write_status> statuses(const std::vector<write_outcome>& outcomes) {
  std::vector<write_status> result;
  for (auto& o : outcomes)
    result.push_back(o.status);
  return result;
}

} // namespace

TEST_CASE_METHOD(store_fixture, "the store answers a batch with each event's outcome, in order") {
  auto s = spawn_store();
  CHECK(statuses(add(s, {make_event(1)})) == std::vector<write_status>{write_status::added});
  CHECK(statuses(add(s, {make_event(2), make_event(1), make_event(3), make_event(2)}))
        == std::vector<write_status>{write_status::added, write_status::duplicate,
                                     write_status::added, write_status::duplicate});
  auto stored = events_in(*backend);
  REQUIRE(stored.size() == 3);
  CHECK(stored[0] == make_event(1));
  CHECK(stored[2].event_id == uuid(3));
}

TEST_CASE_METHOD(store_fixture, "a back end's failure reaches the requester as a typed store error") {
  auto s = spawn_store();
  backend->failures.push_back(make_error(store_error::unavailable, "connection refused"));
  auto answer = request<std::vector<write_outcome>>(s, add_if_new_atom::value,
                                                    batch_of({make_event(1)}), origins_for(1),
                                                    origins_for(0));
  REQUIRE(answer->arrived);
  CHECK_FALSE(answer->value);
  CHECK(answer->error == "store unavailable: connection refused");
  CHECK(events_in(*backend).empty());

  // The code itself, not only its wording, crosses the actor boundary.
  caf::error code;
  sys.spawn([&, s](caf::event_based_actor* probe) {
    probe->request(s, caf::infinite, find_atom::value, uuid(9))
      .then([](std::string&) {}, [&](caf::error& err) { code = err; });
  });
  run();
  CHECK(code == store_error::not_found);
}

TEST_CASE_METHOD(store_fixture, "reads, the single event and erasure go to the back end") {
  auto s = spawn_store();
  add(s, {make_event(1, "alice"), make_event(2, "bob", "LOGOUT"), make_event(3, "alice")});
  auto page = ask<event_page>(s, get_json_atom::value, event_query{0, 1, "alice", ""});
  CHECK(page.json.str() == "[" + to_json(make_event(1, "alice")) + "]");
  CHECK(page.next != 0);
  CHECK(ask<std::string>(s, find_atom::value, uuid(2)) == to_json(make_event(2, "bob", "LOGOUT")));
  CHECK(ask<uint64_t>(s, erase_atom::value, std::string{"alice"}) == 2);
  CHECK(ask<event_page>(s, get_json_atom::value, event_query{}).json.str()
        == "[" + to_json(make_event(2, "bob", "LOGOUT")) + "]");
}

TEST_CASE_METHOD(store_fixture, "without a retention period nothing is ever expired") {
  spawn_store();
  run_all_timeouts();
  CHECK(backend->expiry_cutoffs.empty());
}

TEST_CASE_METHOD(store_fixture, "expiry runs at start, batch after batch while full ones come, then every interval") {
  backend->expired = {store_state::expire_batch, store_state::expire_batch, 7};
  auto before = std::chrono::system_clock::now();
  spawn_store(48h);
  run();
  // Three batches at once: two full ones, and one that found the last 7.
  REQUIRE(backend->expiry_cutoffs.size() == 3);
  auto cutoff = backend->expiry_cutoffs.front();
  CHECK(cutoff >= before - 48h);
  CHECK(cutoff <= std::chrono::system_clock::now() - 48h);
  // Then nothing until the interval has passed.
  advance(store_state::expire_interval - 1ms);
  CHECK(backend->expiry_cutoffs.size() == 3);
  advance(1ms);
  CHECK(backend->expiry_cutoffs.size() == 4);
  advance(store_state::expire_interval);
  CHECK(backend->expiry_cutoffs.size() == 5);
}

TEST_CASE_METHOD(store_fixture, "a database back end is probed every interval, traffic or not") {
  backend->database = true;
  spawn_store();
  run();
  CHECK(backend->probes == 0);
  advance(store_state::probe_interval - 1ms);
  CHECK(backend->probes == 0);
  advance(1ms);
  CHECK(backend->probes == 1);
  advance(store_state::probe_interval);
  CHECK(backend->probes == 2);
}

TEST_CASE_METHOD(store_fixture, "a back end without a database is never probed") {
  spawn_store();
  run_all_timeouts(); // would never end with a probe scheduled
  CHECK(backend->probes == 0);
}

TEST_CASE_METHOD(store_fixture, "the store hands a write's read positions to its back end, and says what the back end knows") {
  auto s = spawn_store();
  auto resume = std::make_shared<const std::vector<kafka::partition_offset>>(
    std::vector<kafka::partition_offset>{{"user-activity-events", 0, 2}});
  ask<std::vector<write_outcome>>(s, add_if_new_atom::value, batch_of({make_event(1), make_event(2)}),
                                  origins_for(2), resume);
  REQUIRE(backend->resumes.size() == 1);
  CHECK(backend->resumes[0] == *resume);
  // The fake keeps none, as the memory store: nothing is known.
  using offsets = std::vector<kafka::partition_offset>;
  CHECK(ask<offsets>(s, positions_atom::value, offsets{{"user-activity-events", 0, -1001}}).empty());
}
