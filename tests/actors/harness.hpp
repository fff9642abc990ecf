// The actor-level test harness: actors spawned on CAF's test coordinator, where messages are
// delivered only when the test says so and time is virtual, plus fake Kafka clients that record
// what the actors ask of them and report whatever outcome the test scripts.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/event_based_actor.hpp>

#include <nlohmann/json.hpp>

#include "actors/messages.hpp"
#include "core/kafka_clients.hpp"
#include "core/memory_store.hpp"
#include "core/store_backend.hpp"

namespace uas::testing {

// A producer client that delivers nothing by itself: each produced record waits until the test
// acknowledges or fails it, unless an outcome was scripted for it beforehand.
class fake_producer_client final : public kafka::producer_client {
public:
  struct produced_record {
    std::string key;
    std::string value;
    kafka::outgoing_message message; // all of it: null key or value, headers
    uint64_t id;
    bool reported = false;
  };

  std::vector<produced_record> produced; // every produce call, in order

  // The next records' outcomes, in order: "" acknowledges, anything else fails with that reason.
  void script(std::vector<std::string> outcomes) {
    scripted.insert(scripted.end(), outcomes.begin(), outcomes.end());
  }

  void acknowledge(size_t i) { report(i, ""); }
  // A failure that may pass (a topic missing, a broker away), or, `permanent`, one that cannot.
  void fail(size_t i, std::string reason, bool permanent = false) {
    report(i, std::move(reason), permanent);
  }

  void produce(const kafka::outgoing_message& message, uint64_t id) override {
    produced.push_back({message.key, message.value, message, id});
    if (!scripted.empty()) {
      auto outcome = scripted.front();
      scripted.pop_front();
      report(produced.size() - 1, outcome);
    }
  }

  void notify_deliveries(std::function<void()> waiting) override { waiting_ = std::move(waiting); }

  std::vector<kafka::delivery> take_deliveries() override { return std::exchange(reports, {}); }

  bool flush(std::chrono::milliseconds) override { return true; }

private:
  void report(size_t i, std::string outcome, bool permanent = false) {
    auto& r = produced.at(i);
    if (r.reported)
      throw std::logic_error{"record reported twice"};
    r.reported = true;
    reports.push_back({r.id, std::move(outcome), permanent});
    if (waiting_)
      waiting_();
  }

  std::deque<std::string> scripted;
  std::vector<kafka::delivery> reports;
  std::function<void()> waiting_;
};

// A consumer client that records each commit, pause and resume.
class fake_consumer_client final : public kafka::consumer_client {
public:
  std::vector<std::vector<kafka::partition_offset>> commits;
  int pauses = 0;
  int resumes = 0;
  bool paused = false;

  void commit(const std::vector<kafka::partition_offset>& offsets) override {
    commits.push_back(offsets);
  }
  void pause() override {
    ++pauses;
    paused = true;
  }
  void resume() override {
    ++resumes;
    paused = false;
  }

  // The latest committed position of a partition, or -1.
  int64_t committed(const std::string& topic, int32_t partition) const {
    int64_t result = -1;
    for (auto& batch : commits)
      for (auto& p : batch)
        if (p.topic == topic && p.partition == partition)
          result = p.offset;
    return result;
  }
};

// The events a store back end holds, in processing order: how a test looks inside a store.
inline std::vector<event> events_in(store_backend& backend) {
  std::vector<event> events;
  auto page = backend.read({});
  if (!page)
    throw std::runtime_error{"the store cannot be read"};
  for (auto& e : nlohmann::json::parse(page->json.str()))
    events.push_back({e["eventId"], e["userId"], e["eventType"], e["timestamp"], e["payload"].dump()});
  return events;
}

// A back end that keeps events in memory, where the test can look, and fails each write the
// test scripts a failure for: outages, exactly when the test says.
class fake_store_backend final : public store_backend {
public:
  memory_store memory;
  std::deque<caf::error> failures;           // the next writes fail with these, in order
  std::vector<std::vector<std::string>> writes; // the eventIds of every write attempted
  std::vector<event> received;                 // every event handed over, as the consumer made it
  std::vector<std::vector<kafka::partition_offset>> resumes; // every write's read positions
  std::vector<std::chrono::system_clock::time_point> expiry_cutoffs;
  std::deque<uint64_t> expired;              // what the next expiries answer (else 0)
  bool database = false;                     // whether it plays a back end with a database
  int probes = 0;                            // how often it was probed

  caf::expected<std::vector<write_outcome>>
  add_if_new(const std::vector<event>& batch, const std::vector<kafka::partition_offset>& origins,
             const std::vector<kafka::partition_offset>& resume) override {
    std::vector<std::string> ids;
    for (auto& e : batch)
      ids.push_back(e.event_id);
    writes.push_back(ids);
    received.insert(received.end(), batch.begin(), batch.end());
    if (!failures.empty()) {
      auto failure = failures.front();
      failures.pop_front();
      return failure;
    }
    resumes.push_back(resume);
    return memory.add_if_new(batch, origins, resume);
  }
  caf::expected<event_page> read(const event_query& q) override { return memory.read(q); }
  caf::expected<std::string> find(const std::string& id) override { return memory.find(id); }
  caf::expected<uint64_t> erase_user(const std::string& user) override {
    return memory.erase_user(user);
  }
  bool remote() const override { return database; }
  void probe() override { ++probes; }
  caf::expected<uint64_t> expire(std::chrono::system_clock::time_point cutoff, uint64_t) override {
    expiry_cutoffs.push_back(cutoff);
    if (expired.empty())
      return uint64_t{0};
    auto n = expired.front();
    expired.pop_front();
    return n;
  }
};

inline caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.inline-output", true);
  cfg.add_error_category(store_error_category, render_store_error);
  cfg.add_error_category(publish_error_category, render_publish_error);
  return cfg;
}

// What became of a request sent from a test: nothing yet, a value, or an error.
template <class T>
struct answer {
  bool arrived = false;
  std::optional<T> value;
  std::string error;
};

// Owns an actor system on the test coordinator. Nothing runs until run() or advance().
class actor_fixture {
public:
  actor_fixture()
    : sys{testing_config(cfg)},
      sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())} {
  }

  // Stops what the test spawned, so the system can shut down.
  ~actor_fixture() {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  // Spawns an actor that lives until the test ends.
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = sys.spawn(std::forward<Ts>(xs)...);
    spawned.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  // Delivers every pending message (not timeouts); returns how many were handled.
  size_t run() { return sched.run(); }

  // Moves virtual time forward, firing the delayed messages that fall due, then runs.
  void advance(std::chrono::milliseconds d) {
    sched.advance_time(caf::timespan{d});
    run();
  }

  // Fires every delayed message, in time order, until none is left.
  void run_all_timeouts() {
    while (sched.has_pending_timeout()) {
      sched.trigger_timeout();
      run();
    }
  }

  // Sends a request from a probe actor and runs the system; the answer, if any, is in the
  // result by the time this returns, and arrives there later otherwise.
  template <class Result, class Handle, class... Ts>
  std::shared_ptr<answer<Result>> request(const Handle& target, Ts... xs) {
    auto result = std::make_shared<answer<Result>>();
    auto& system = sys;
    sys.spawn([=, &system](caf::event_based_actor* probe) {
      probe->request(target, caf::infinite, xs...)
        .then(
          [=](Result& x) {
            result->arrived = true;
            result->value = std::move(x);
          },
          [=, &system](caf::error& err) {
            result->arrived = true;
            result->error = system.render(err);
          });
    });
    run();
    return result;
  }

  // A request whose answer must be there at once: returns it, or throws.
  template <class Result, class Handle, class... Ts>
  Result ask(const Handle& target, Ts... xs) {
    auto result = request<Result>(target, xs...);
    if (!result->arrived)
      throw std::runtime_error{"no answer"};
    if (!result->value)
      throw std::runtime_error{result->error};
    return *result->value;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  std::vector<caf::actor> spawned;
};

} // namespace uas::testing
