// The consumer actor: valid records reach the store, poison goes to the dead-letter topic (or is
// skipped without one), and a position is committed only once the store has answered for it, or
// the broker acknowledged its dead letter, and the same holds for everything before it.
#include <catch2/catch.hpp>

#include "actors/consumer_actor.hpp"
#include "actors/store_actor.hpp"
#include "core/message_contract.hpp"
#include "core/metrics.hpp"
#include "harness.hpp"

using namespace uas;
using namespace uas::testing;

namespace {

const std::string topic = "user-activity-events";

// The eventId the tests call `name` (six characters at most): a UUID, as on the topic.
std::string id_of(const std::string& name) {
  std::string tail;
  for (unsigned char c : name)
    tail += "0123456789abcdef"[c >> 4], tail += "0123456789abcdef"[c & 15];
  return "00000000-0000-4000-8000-" + std::string(12 - tail.size(), '0') + tail;
}

std::string event_json(const std::string& name, const std::string& type = "LOGIN") {
  return to_json({id_of(name), "alice", type, "2026-11-24T01:52:00.047Z", R"({"page":"/home"})"});
}

kafka::record make_record(int32_t partition, int64_t offset, std::string value,
                          kafka::headers headers = {}) {
  return {topic, partition, offset, true, std::move(value), true, "alice", std::move(headers)};
}

kafka::record null_record(int32_t partition, int64_t offset) {
  return {topic, partition, offset, false, {}, false, {}, {}};
}

// A store whose answers to a batch's add_if_new wait until the test releases them, in any order
// it likes. `writes` gets the eventIds of each batch as it comes.
using release_atom = caf::atom_constant<caf::atom("release")>;
using held_store_actor = store_actor::extend<caf::reacts_to<release_atom, uint64_t, bool>>;
using write_log = std::shared_ptr<std::vector<std::vector<std::string>>>;

struct held_store_state {
  std::vector<std::pair<size_t, caf::typed_response_promise<std::vector<write_outcome>>>> pending;
};

held_store_actor::behavior_type
held_store(held_store_actor::stateful_pointer<held_store_state> self, write_log writes) {
  return {
    [=](add_if_new_atom, const event_batch& batch, const origin_batch&, const origin_batch&) {
      writes->emplace_back();
      for (auto& e : *batch)
        writes->back().push_back(e.event_id);
      self->state.pending.emplace_back(batch->size(),
                                       self->make_response_promise<std::vector<write_outcome>>());
      return self->state.pending.back().second;
    },
    [=](release_atom, uint64_t i, bool added) {
      auto& [size, promise] = self->state.pending.at(i);
      promise.deliver(std::vector<write_outcome>(
        size, {added ? write_status::added : write_status::duplicate, {}}));
    },
    [](get_json_atom, const event_query&) { return event_page{shared_text{"[]"}, 0}; },
    [](find_atom, const std::string&) -> caf::result<std::string> {
      return make_error(store_error::not_found);
    },
    [](erase_atom, const std::string&) { return uint64_t{0}; },
    [](positions_atom, const std::vector<kafka::partition_offset>&) {
      return std::vector<kafka::partition_offset>{};
    },
  };
}

// A store that refuses every event's data, as a database refuses text it cannot hold.
store_actor::behavior_type rejecting_store() {
  return {
    [](add_if_new_atom, const event_batch& batch, const origin_batch&, const origin_batch&) {
      return std::vector<write_outcome>(batch->size(), {write_status::rejected, "refused"});
    },
    [](get_json_atom, const event_query&) { return event_page{shared_text{"[]"}, 0}; },
    [](find_atom, const std::string&) -> caf::result<std::string> {
      return make_error(store_error::not_found);
    },
    [](erase_atom, const std::string&) { return uint64_t{0}; },
    [](positions_atom, const std::vector<kafka::partition_offset>&) {
      return std::vector<kafka::partition_offset>{};
    },
  };
}

struct consumer_fixture : actor_fixture {
  std::shared_ptr<fake_consumer_client> client = std::make_shared<fake_consumer_client>();
  std::shared_ptr<fake_store_backend> backend = std::make_shared<fake_store_backend>();

  // The store actor on the fake back end, which keeps what it is given in memory.
  store_actor spawn_store() {
    return spawn(store, std::static_pointer_cast<store_backend>(backend), std::chrono::hours{0});
  }
  // A store that answers when the test says (release), and the eventIds of each write it got.
  write_log held_writes = std::make_shared<std::vector<std::vector<std::string>>>();
  held_store_actor spawn_held_store() { return spawn(held_store, held_writes); }

  // What a rebalance's revocation asks of the consumer.
  using offsets = std::vector<kafka::partition_offset>;
  std::shared_ptr<answer<offsets>> revoke(const consumer_actor& c, offsets leaving,
                                          caf::timespan wait = consumer_state::revoke_wait) {
    return request<offsets>(c, revoke_atom::value, std::move(leaving), wait);
  }
  // The dead-letter producer, for consumers spawned with one.
  std::shared_ptr<fake_producer_client> dead_letters = std::make_shared<fake_producer_client>();

  // A consumer without a dead-letter topic: poison is skipped.
  consumer_actor spawn_consumer(const store_actor& s) {
    return spawn(consumer, s, std::static_pointer_cast<kafka::consumer_client>(client),
                 dead_letter_route{});
  }

  // A consumer sending poison to `topic`.dlq, retrying after 500 ms, doubling up to 4 s.
  consumer_actor spawn_dead_lettering_consumer(const store_actor& s) {
    dead_letter_route route{dead_letters, topic + ".dlq", "test-group",
                            std::chrono::milliseconds{500}, std::chrono::milliseconds{4000}};
    return spawn(consumer, s, std::static_pointer_cast<kafka::consumer_client>(client), route);
  }

  void deliver(const consumer_actor& c, std::vector<kafka::record> batch) {
    caf::anon_send(c, records_atom::value, std::move(batch));
    run();
  }

  // Lets the consumer's periodic commit happen.
  void commit_due() { advance(consumer_state::commit_interval); }

  // Lets the held store answer its i-th batch.
  void release(const held_store_actor& s, uint64_t i, bool added = true) {
    caf::anon_send(s, release_atom::value, i, added);
    run();
  }

  std::vector<event> stored() { return events_in(*backend); }
};

} // namespace

TEST_CASE_METHOD(consumer_fixture, "consumed events reach the store and their offsets commit") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("e1")), make_record(1, 0, event_json("e2")),
              make_record(0, 1, event_json("e3", "LOGOUT"))});
  CHECK(client->commits.empty()); // commits wait for the commit interval
  commit_due();
  auto events = stored();
  REQUIRE(events.size() == 3);
  CHECK(events[0].event_id == id_of("e1"));
  CHECK(events[2].event_type == "LOGOUT");
  CHECK(events[2].payload == R"({"page":"/home"})");
  // Committed positions are the next offsets to read.
  CHECK(client->committed(topic, 0) == 2);
  CHECK(client->committed(topic, 1) == 1);
}

TEST_CASE_METHOD(consumer_fixture, "the same event delivered twice is stored once") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("e1")), make_record(0, 1, event_json("e1"))});
  // Redelivered later, as after a rebalance.
  deliver(c, {make_record(0, 0, event_json("e1"))});
  commit_due();
  CHECK(stored().size() == 1);
  CHECK(client->committed(topic, 0) == 2);
}

TEST_CASE_METHOD(consumer_fixture, "poison records are skipped and the partition moves on") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  std::vector<kafka::record> batch = {
    make_record(0, 0, "not json"),
    make_record(0, 1, std::string{"\xff\xfe{\"a\":1}"}),
    make_record(0, 2, "[1,2,3]"),
    make_record(0, 3, "\"a string\""),
    make_record(0, 4, "42"),
    make_record(0, 5, "null"),
    null_record(0, 6),
    make_record(0, 7, R"({"userId":"u","eventType":"LOGIN"})"),
    make_record(0, 8, R"({"eventId":7,"userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z"})"),
    make_record(0, 9, R"({"eventId":"","userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z"})"),
    make_record(0, 10, R"({"eventId":"x","userId":"u","eventType":"SIGNUP","timestamp":"2026-11-24T01:52:00.047Z"})"),
    make_record(0, 11, R"({"eventId":"x","userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z","payload":null})"),
    make_record(0, 12, R"({"eventId":"x","userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z","payload":[1]})"),
    make_record(0, 13, std::string(300'000, '[')),
    make_record(0, 14, event_json("good")),
  };
  deliver(c, batch);
  commit_due();
  auto events = stored();
  REQUIRE(events.size() == 1);
  CHECK(events[0].event_id == id_of("good"));
  CHECK(client->committed(topic, 0) == 15);
}

TEST_CASE_METHOD(consumer_fixture, "one write at the store at a time: what is read meanwhile goes in the next, and nothing is committed ahead of the store's answer") {
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 10, event_json("a"))});
  deliver(c, {make_record(0, 11, event_json("b"))});
  deliver(c, {make_record(0, 12, "garbage"), make_record(1, 4, event_json("d"))});
  commit_due();
  CHECK(client->commits.empty()); // the skipped record at 12 is done, but 10 and 11 are not
  CHECK(*held_writes == std::vector<std::vector<std::string>>{{id_of("a")}});

  release(s, 0); // 10 is done, 11 waits (12 behind it), and "b" and "d" go to the store together
  CHECK(*held_writes
        == std::vector<std::vector<std::string>>{{id_of("a")}, {id_of("b"), id_of("d")}});
  commit_due();
  CHECK(client->committed(topic, 0) == 11);
  CHECK(client->committed(topic, 1) == -1);

  release(s, 1, false); // a duplicate is an answer too
  commit_due();
  CHECK(client->committed(topic, 0) == 13);
  CHECK(client->committed(topic, 1) == 5);
  CHECK(held_writes->size() == 2);
}

TEST_CASE_METHOD(consumer_fixture, "on revocation the consumer waits for the write at the store, then answers what is done, and leaves what it had not written to the next owner") {
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("a"))});
  deliver(c, {make_record(0, 1, event_json("b"))});
  deliver(c, {make_record(1, 5, event_json("c"))});
  deliver(c, {make_record(2, 7, event_json("d"))}); // a partition that stays

  auto done = revoke(c, {{topic, 0, -1001}, {topic, 1, -1001}});
  CHECK_FALSE(done->arrived); // "a" is at the store: its next owner would read it again
  release(s, 0); // "a" is done, but the periodic commit has not come yet
  // What is stored is committed as the partitions go. "b" and "c" never went to the store:
  // their next owner reads them, once.
  REQUIRE(done->arrived);
  REQUIRE(done->value);
  CHECK(*done->value == offsets{{topic, 0, 1}});
  CHECK(*held_writes == std::vector<std::vector<std::string>>{{id_of("a")}, {id_of("d")}});
  // The partition that stays goes on as before, and nothing is committed twice.
  release(s, 1);
  commit_due();
  REQUIRE(client->commits.size() == 1);
  CHECK(client->commits[0] == offsets{{topic, 2, 8}});
}

TEST_CASE_METHOD(consumer_fixture, "a revocation waits for the store a bounded while, then answers what is done and drops the rest") {
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("a"))});
  deliver(c, {make_record(0, 1, event_json("b"))});
  deliver(c, {make_record(1, 5, event_json("c"))});
  release(s, 0);

  auto done = revoke(c, {{topic, 0, -1001}, {topic, 1, -1001}});
  advance(consumer_state::revoke_wait - std::chrono::milliseconds{1});
  CHECK_FALSE(done->arrived);
  advance(std::chrono::milliseconds{1});
  // Partition 0: offset 0 is done, so reading resumes at 1. The periodic commit handed that to
  // the client while the revocation waited; it is answered again, since the client's own commit
  // may come after the partition has gone. Partition 1: nothing done.
  REQUIRE(done->arrived);
  REQUIRE(done->value);
  CHECK(*done->value == offsets{{topic, 0, 1}});
  CHECK(client->committed(topic, 0) == 1);
  CHECK(client->committed(topic, 1) == -1);

  // The store's late answers for revoked partitions commit nothing: the new owner reads them.
  auto commits = client->commits.size();
  release(s, 1);
  commit_due();
  CHECK(client->commits.size() == commits);

  // Assigned again, the partition starts over from what is redelivered.
  deliver(c, {make_record(0, 1, event_json("b"))});
  release(s, 2);
  commit_due();
  CHECK(client->committed(topic, 0) == 2);
}

TEST_CASE_METHOD(consumer_fixture, "the revocation that closes the consumer waits as long as it is told for the write at the store") {
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("a")), make_record(0, 1, event_json("b"))});
  auto done = revoke(c, {{topic, 0, -1001}}, std::chrono::seconds{8});
  advance(std::chrono::milliseconds{7000});
  CHECK_FALSE(done->arrived); // past a rebalance's wait, on a starved machine
  release(s, 0);
  REQUIRE(done->arrived);
  REQUIRE(done->value);
  CHECK(*done->value == offsets{{topic, 0, 2}}); // all of it, so the next owner reads none again
}

TEST_CASE_METHOD(consumer_fixture, "a batch is answered once taken, before the store has answered") {
  // The polling thread waits for this answer before it reads on: it must not wait for the store.
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  auto taken = request<ok_atom>(c, records_atom::value,
                                std::vector<kafka::record>{make_record(0, 0, event_json("e1"))});
  CHECK(taken->value.has_value());
  CHECK(client->commits.empty()); // the store holds its answer, so nothing is done yet
  release(s, 0);
  commit_due();
  CHECK(client->committed(topic, 0) == 1);
}

TEST_CASE_METHOD(consumer_fixture, "the polling thread waits to read on while a write's worth of events waits for the store") {
  auto s = spawn_held_store();
  auto c = spawn_consumer(s);
  auto batch_from = [](int64_t first, size_t count) {
    std::vector<kafka::record> batch;
    for (size_t i = 0; i < count; ++i) {
      auto offset = first + static_cast<int64_t>(i);
      batch.push_back(make_record(0, offset, event_json("n" + std::to_string(offset))));
    }
    return batch;
  };
  auto first = request<ok_atom>(c, records_atom::value, batch_from(0, 10));
  CHECK(first->arrived); // the store has nothing yet: it takes these at once
  auto below = request<ok_atom>(c, records_atom::value,
                                batch_from(10, consumer_state::max_gathered - 1));
  CHECK(below->arrived);
  auto full = request<ok_atom>(c, records_atom::value, batch_from(1009, 1));
  CHECK_FALSE(full->arrived); // a write's worth gathered behind the one at the store
  release(s, 0);
  REQUIRE(full->arrived); // they went to the store: read on
  CHECK(held_writes->size() == 2);
  CHECK(held_writes->at(1).size() == consumer_state::max_gathered);
}

TEST_CASE_METHOD(consumer_fixture, "while the store's database is down the consumer pauses and retries with a doubling backoff") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  auto down = [] { return make_error(store_error::unavailable, "connection refused"); };
  backend->failures = {down(), down(), down()};

  deliver(c, {make_record(0, 0, event_json("a")), make_record(0, 1, event_json("b"))});
  CHECK(backend->writes.size() == 1);
  CHECK(client->paused);
  CHECK(client->pauses == 1);

  // Records fetched before the pause took hold wait with the failed batch, unsent.
  deliver(c, {make_record(1, 0, event_json("c"))});
  CHECK(backend->writes.size() == 1);

  // Retries of the failed write alone: after 200 ms, then 400 ms, then 800 ms.
  for (auto wait : {200, 400, 800}) {
    auto attempts = backend->writes.size();
    advance(std::chrono::milliseconds{wait - 1});
    CHECK(backend->writes.size() == attempts);
    advance(std::chrono::milliseconds{1});
    REQUIRE(backend->writes.size() > attempts);
    CHECK(backend->writes[attempts] == std::vector<std::string>{id_of("a"), id_of("b")});
  }
  // The third retry succeeded: what waited followed at once, and consumption resumed, once.
  CHECK(backend->writes.size() == 5);
  CHECK(backend->writes.back() == std::vector<std::string>{id_of("c")});
  CHECK_FALSE(client->paused);
  CHECK(client->resumes == 1);
  CHECK(client->pauses == 1);

  commit_due();
  auto events = stored();
  REQUIRE(events.size() == 3);
  CHECK(events[0].event_id == id_of("a"));
  CHECK(events[2].event_id == id_of("c"));
  CHECK(client->committed(topic, 0) == 2);
  CHECK(client->committed(topic, 1) == 1);
}

TEST_CASE_METHOD(consumer_fixture, "nothing is committed past what the store has stored during an outage") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("a"))});
  commit_due();
  CHECK(client->committed(topic, 0) == 1);

  backend->failures = {make_error(store_error::unavailable)};
  deliver(c, {make_record(0, 1, "poison"), make_record(0, 2, event_json("b"))});
  commit_due();
  // The poison record at 1 is done, so reading may resume at 2, but not past the unstored "b".
  CHECK(client->committed(topic, 0) == 2);
  advance(consumer_state::first_backoff);
  commit_due();
  CHECK(client->committed(topic, 0) == 3);
  CHECK(stored().size() == 2);
}

TEST_CASE_METHOD(consumer_fixture, "the backoff stops doubling at its ceiling") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  for (int i = 0; i < 10; ++i)
    backend->failures.push_back(make_error(store_error::unavailable));
  deliver(c, {make_record(0, 0, event_json("a"))});
  std::vector<std::chrono::milliseconds> waits;
  auto elapsed = std::chrono::milliseconds{0};
  for (size_t attempts = 1; attempts <= 10; ++attempts) {
    // Step through virtual time until the next attempt comes.
    auto start = elapsed;
    while (backend->writes.size() == attempts) {
      advance(std::chrono::milliseconds{100});
      elapsed += std::chrono::milliseconds{100};
    }
    waits.push_back(elapsed - start);
  }
  using ms = std::chrono::milliseconds;
  CHECK(waits == std::vector<ms>{ms{200}, ms{400}, ms{800}, ms{1600}, ms{3200}, ms{5000},
                                 ms{5000}, ms{5000}, ms{5000}, ms{5000}});
  CHECK(stored().size() == 1);
  CHECK(client->pauses == 1);
  CHECK(client->resumes == 1);
}

TEST_CASE_METHOD(consumer_fixture, "an event the database refuses is skipped and its partition moves on") {
  auto s = spawn(rejecting_store);
  auto c = spawn_consumer(s);
  auto rejected = metrics::global().events_rejected.get();
  deliver(c, {make_record(0, 0, event_json("a")), make_record(0, 1, event_json("b"))});
  commit_due();
  CHECK(metrics::global().events_rejected.get() == rejected + 2);
  CHECK(client->committed(topic, 0) == 2);
  CHECK(client->pauses == 0);
}

// -- the dead-letter topic ------------------------------------------------------

namespace {

const std::string a_traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The value of the last header named `name`, or "(absent)".
std::string header_of(const kafka::outgoing_message& m, const std::string& name) {
  auto* h = find_header(m.headers, name);
  return h ? h->value : "(absent)";
}

uint64_t dead_lettered(dead_letter_reason reason) {
  return metrics::global().events_dead_lettered.get({name_of(reason)});
}

} // namespace

TEST_CASE_METHOD(consumer_fixture, "a poison message goes to the dead-letter topic as it was read") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  kafka::record poison{topic, 2, 7, true, std::string{"\xff\xfe not JSON\0", 12}, true,
                       std::string{"key\0\x01", 5},
                       {{"traceparent", a_traceparent}, {"x-origin", "kcat"}, {"x-null", "", true}}};
  auto before = dead_lettered(dead_letter_reason::malformed);
  deliver(c, {poison});
  REQUIRE(dead_letters->produced.size() == 1);
  auto& m = dead_letters->produced[0].message;
  CHECK(m.has_key);
  CHECK(m.key == poison.key);
  CHECK(m.has_value);
  CHECK(m.value == poison.value);
  // The original headers first, unchanged, then where and why.
  REQUIRE(m.headers.size() == 9);
  CHECK(kafka::headers(m.headers.begin(), m.headers.begin() + 3) == poison.headers);
  CHECK(header_of(m, "dlq.reason") == "malformed");
  CHECK(header_of(m, "dlq.error") == "body is not valid JSON (at byte 0)");
  CHECK(header_of(m, "dlq.original.topic") == topic);
  CHECK(header_of(m, "dlq.original.partition") == "2");
  CHECK(header_of(m, "dlq.original.offset") == "7");
  CHECK(header_of(m, "dlq.consumer.group") == "test-group");
  CHECK(dead_lettered(dead_letter_reason::malformed) == before); // not until the broker has it
  dead_letters->acknowledge(0);
  run();
  CHECK(dead_lettered(dead_letter_reason::malformed) == before + 1);
}

TEST_CASE_METHOD(consumer_fixture, "a null value and a null key stay null in the dead letter") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  deliver(c, {null_record(0, 0)});
  REQUIRE(dead_letters->produced.size() == 1);
  auto& m = dead_letters->produced[0].message;
  CHECK_FALSE(m.has_key);
  CHECK_FALSE(m.has_value);
  CHECK(header_of(m, "dlq.reason") == "malformed");
  CHECK(header_of(m, "dlq.error") == "value is null");
}

TEST_CASE_METHOD(consumer_fixture, "each kind of message the consumer cannot store has its reason") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  auto too_large = event_json("big");
  too_large.insert(too_large.size() - 2, std::string(max_message_value_bytes, ' '));
  deliver(c, {
    make_record(0, 0, "[1,2,3]"),
    make_record(0, 1, R"({"eventId":"x","userId":"u","eventType":"SIGNUP","timestamp":"2026-11-24T01:52:00.047Z"})"),
    make_record(0, 2, event_json("v2"), {{"schema-version", "2"}}),
    make_record(0, 3, too_large),
    make_record(0, 4, event_json("v1"), {{"schema-version", "1"}}),
    make_record(0, 5, event_json("bare")),
  });
  std::vector<std::string> reasons;
  for (auto& p : dead_letters->produced)
    reasons.push_back(header_of(p.message, "dlq.reason"));
  CHECK(reasons == std::vector<std::string>{"malformed", "invalid", "unknown-schema", "too-large"});
  CHECK(header_of(dead_letters->produced[2].message, "dlq.error")
        == "schema-version \"2\" is not one this consumer reads (it reads 1)");
  // Version 1 said outright, and no version at all, are both read as version 1.
  auto events = stored();
  REQUIRE(events.size() == 2);
  CHECK(events[0].event_id == id_of("v1"));
  CHECK(events[1].event_id == id_of("bare"));
}

TEST_CASE_METHOD(consumer_fixture, "a version 2 message is not mistaken for version 1, however it looks") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  // One a version 1 reader would take as a valid event, one shaped as a version 2 might be
  // (renamed fields), and versions spelled in ways that are not "1".
  deliver(c, {
    make_record(0, 0, event_json("v2"), {{"schema-version", "2"}}),
    make_record(0, 1, R"({"id":"00000000-0000-4000-8000-000000000001","user":{"id":"u"},"type":"login"})",
                {{"schema-version", "2"}}),
    make_record(0, 2, event_json("v1.0"), {{"schema-version", "1.0"}}),
    make_record(0, 3, event_json("empty"), {{"schema-version", ""}}),
    make_record(0, 4, event_json("null"), {{"schema-version", "", true}}),
    // Repeated: the last one counts, as Kafka clients read headers.
    make_record(0, 5, event_json("last"), {{"schema-version", "1"}, {"schema-version", "2"}}),
  });
  CHECK(stored().empty());
  REQUIRE(dead_letters->produced.size() == 6);
  for (auto& p : dead_letters->produced)
    CHECK(header_of(p.message, "dlq.reason") == "unknown-schema");
}

TEST_CASE_METHOD(consumer_fixture, "a poison message's offset is committed only once its dead letter is acknowledged") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  deliver(c, {make_record(0, 0, event_json("a")), make_record(0, 1, "garbage"),
              make_record(0, 2, event_json("b"))});
  commit_due();
  // Both events are stored, but the poison between them holds the position at 1.
  CHECK(stored().size() == 2);
  CHECK(client->committed(topic, 0) == 1);
  dead_letters->acknowledge(0);
  run();
  commit_due();
  CHECK(client->committed(topic, 0) == 3);
}

TEST_CASE_METHOD(consumer_fixture, "a dead letter that cannot be written yet is retried with a doubling backoff, holding the position") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  deliver(c, {make_record(0, 5, "garbage"), make_record(0, 6, event_json("after"))});
  using std::chrono::milliseconds;
  // 500 ms, doubling, at most 4 s (the fixture's route).
  std::vector<milliseconds> schedule{milliseconds{500}, milliseconds{1000}, milliseconds{2000},
                                     milliseconds{4000}, milliseconds{4000}};
  for (size_t i = 0; i < schedule.size(); ++i) {
    INFO("retry " << i + 1);
    dead_letters->fail(i, "Broker: Unknown topic or partition");
    run();
    advance(schedule[i] - milliseconds{1});
    CHECK(dead_letters->produced.size() == i + 1); // not a moment early
    advance(milliseconds{1});
    REQUIRE(dead_letters->produced.size() == i + 2);
    CHECK(dead_letters->produced[i + 1].value == "garbage");
    CHECK(client->commits.empty()); // never past the poison (reading began there) meanwhile
  }
  dead_letters->acknowledge(schedule.size());
  run();
  commit_due();
  CHECK(client->committed(topic, 0) == 7);
  CHECK(stored().size() == 1);
}

TEST_CASE_METHOD(consumer_fixture, "a dead letter refused for good is counted and the partition moves on") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  auto failed_before = metrics::global().events_dead_letter_failed.get();
  deliver(c, {make_record(0, 0, "garbage"), make_record(0, 1, event_json("after"))});
  dead_letters->fail(0, "Broker: Message size too large", true);
  run();
  commit_due();
  CHECK(client->committed(topic, 0) == 2);
  CHECK(metrics::global().events_dead_letter_failed.get() == failed_before + 1);
  run_all_timeouts();
  CHECK(dead_letters->produced.size() == 1); // no retry
}

TEST_CASE_METHOD(consumer_fixture, "a revocation waits for a dead letter in flight and commits past the poison once it is acknowledged") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  deliver(c, {make_record(0, 3, "garbage")});
  dead_letters->fail(0, "Local: Message timed out");
  run();
  auto done = revoke(c, {{topic, 0, -1001}});
  CHECK_FALSE(done->arrived); // the dead letter is not written yet: the revocation waits
  advance(std::chrono::milliseconds{500});
  REQUIRE(dead_letters->produced.size() == 2); // retried meanwhile, as before the revocation
  dead_letters->acknowledge(1);
  run();
  REQUIRE(done->arrived);
  REQUIRE(done->value);
  CHECK(*done->value == offsets{{topic, 0, 4}}); // the next owner starts after the poison
}

TEST_CASE_METHOD(consumer_fixture, "a revoked partition's dead letters are left to its next owner when the wait runs out") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  deliver(c, {make_record(0, 3, "garbage")});
  auto done = revoke(c, {{topic, 0, -1001}});
  advance(consumer_state::revoke_wait - std::chrono::milliseconds{1});
  CHECK_FALSE(done->arrived);
  advance(std::chrono::milliseconds{1});
  REQUIRE(done->arrived);
  REQUIRE(done->value);
  CHECK(done->value->empty()); // the poison is not done: the next owner reads it again
  // The broker's late answer neither commits nor retries anything here any more.
  dead_letters->fail(0, "Local: Message timed out");
  run_all_timeouts();
  CHECK(dead_letters->produced.size() == 1);
  CHECK(client->commits.empty());
}

TEST_CASE_METHOD(consumer_fixture, "an event the database refuses goes to the dead-letter topic as it was read") {
  auto s = spawn(rejecting_store);
  auto c = spawn_dead_lettering_consumer(s);
  auto rejected = metrics::global().events_rejected.get();
  auto before = dead_lettered(dead_letter_reason::store_rejected);
  auto value = event_json("r1");
  deliver(c, {make_record(0, 0, value, {{"traceparent", a_traceparent}})});
  REQUIRE(dead_letters->produced.size() == 1);
  auto& m = dead_letters->produced[0].message;
  CHECK(m.key == "alice");
  CHECK(m.value == value);
  CHECK(header_of(m, "traceparent") == a_traceparent);
  CHECK(header_of(m, "dlq.reason") == "store-rejected");
  CHECK(header_of(m, "dlq.error") == "the store refused it: refused");
  CHECK(header_of(m, "dlq.original.offset") == "0");
  CHECK(metrics::global().events_rejected.get() == rejected + 1);
  commit_due();
  CHECK(client->commits.empty()); // not past it before the broker has its dead letter
  dead_letters->acknowledge(0);
  run();
  commit_due();
  CHECK(client->committed(topic, 0) == 1);
  CHECK(dead_lettered(dead_letter_reason::store_rejected) == before + 1);
}

TEST_CASE_METHOD(consumer_fixture, "without a dead-letter topic poison is skipped at once") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, "garbage"), make_record(0, 1, event_json("e1"), {{"schema-version", "2"}})});
  commit_due();
  CHECK(client->committed(topic, 0) == 2);
  CHECK(dead_letters->produced.empty());
}

TEST_CASE_METHOD(consumer_fixture, "an event reaches the store with the trace context its message came with") {
  auto s = spawn_store();
  auto c = spawn_consumer(s);
  deliver(c, {make_record(0, 0, event_json("t1"), {{"traceparent", a_traceparent}}),
              make_record(0, 1, event_json("t2"), {{"traceparent", "00-not-a-trace"}}),
              make_record(0, 2, event_json("t3"))});
  auto& events = backend->received;
  REQUIRE(events.size() == 3);
  CHECK(events[0].traceparent == a_traceparent);
  CHECK(events[1].traceparent.empty()); // an invalid one is no context
  CHECK(events[2].traceparent.empty());
}

TEST_CASE_METHOD(consumer_fixture, "each write tells the store where its partitions resume: past its last event, never past a dead letter on its way") {
  auto s = spawn_store();
  auto c = spawn_dead_lettering_consumer(s);
  using offsets = std::vector<kafka::partition_offset>;
  deliver(c, {make_record(0, 7, event_json("a")), make_record(1, 2, event_json("b")),
              make_record(0, 8, event_json("c"))});
  REQUIRE(backend->resumes.size() == 1);
  CHECK(backend->resumes[0] == offsets{{topic, 0, 9}, {topic, 1, 3}});

  // The poison at 9 is not written yet: partition 0 resumes there, so that a next owner that
  // takes it before the dead letter is acknowledged writes the dead letter again.
  deliver(c, {make_record(0, 9, "garbage"), make_record(0, 10, event_json("d")),
              make_record(1, 3, event_json("e"))});
  REQUIRE(backend->resumes.size() == 2);
  CHECK(backend->resumes[1] == offsets{{topic, 0, 9}, {topic, 1, 4}});
  dead_letters->acknowledge(0);
  run();
  deliver(c, {make_record(0, 11, event_json("f"))});
  REQUIRE(backend->resumes.size() == 3);
  CHECK(backend->resumes[2] == offsets{{topic, 0, 12}});
}
