// The consumer: validates each record from the topic, hands valid events to the store, sends
// what it cannot store to the dead-letter topic (or skips it when there is none), and commits a
// position only once every record before it in its partition is stored or acknowledged as a dead
// letter (at least once). While the store cannot reach its database it pauses consumption and
// retries, with backoff, what the store could not take.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/typed_response_promise.hpp>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/messages.hpp"
#include "core/message_contract.hpp"

namespace uas {

// Records of one partition between arrival and commit, oldest first.
struct partition_progress {
  std::deque<std::pair<int64_t, bool>> pending; // offset, done
  int64_t began = -1;                           // where reading began: the group's position then
  int64_t committed = -1;                       // next offset to read, as last committed
  int64_t done_upto = -1;                       // next offset to read, as done so far

  void track(int64_t offset);
  // Marks `offset` done; true if the committable position moved.
  bool finish(int64_t offset);
  bool has_uncommitted() const { return done_upto > committed; }
  bool has_progress() const { return done_upto > began; }
};

// Partitions leaving this consumer, waiting for the store's answers on their records in flight.
struct pending_revocation {
  uint64_t id;
  std::vector<kafka::partition_offset> leaving;
  caf::timespan wait; // how long it may wait, for the line that says it gave up
  caf::typed_response_promise<std::vector<kafka::partition_offset>> answer;
};

// Where the consumer sends the messages it cannot store (SPEC, Event; docs/operations.md).
struct dead_letter_route {
  std::shared_ptr<kafka::producer_client> client; // null: no dead-letter topic, skip and log
  std::string topic;                               // for log lines; the client writes there
  std::string consumer_group;                      // the dlq.consumer.group header
  std::chrono::milliseconds backoff{500};          // before the first retry; doubles after each
  std::chrono::milliseconds max_backoff{30000};

  // A dead letter that could not be written (topic missing, broker away) is tried again after
  // this; the partition's position waits for it meanwhile.
  std::chrono::milliseconds delay_before(int retry) const;
};

// A dead letter on its way: what it is for, and the message itself, kept for retries.
struct pending_dead_letter {
  kafka::partition_offset at; // the original's position
  dead_letter_reason reason;
  std::string error;
  std::string trace_id;
  kafka::outgoing_message message;
  int attempt = 1;
};

struct consumer_state {
  using partition_key = std::pair<std::string, int32_t>;
  // A partition named without a copy of its topic's name, as the lookups for each record do.
  using partition_ref = std::pair<std::string_view, int32_t>;
  // Orders partitions by topic, then number, however they are named.
  struct partition_order {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return partition_ref{a.first, a.second} < partition_ref{b.first, b.second};
    }
  };

  // Valid events on their way to the store, where each was read, the records they came in (a
  // dead letter's bytes, should the store refuse one), and where each of their partitions
  // resumes once they are stored.
  struct write {
    event_batch events;
    origin_batch origins;
    std::shared_ptr<const std::vector<kafka::record>> records;
    origin_batch resume;
  };
  // Valid events read while a write is at the store, gathered for the next one.
  struct gathered {
    std::vector<event> events;
    std::vector<kafka::partition_offset> origins;
    std::vector<kafka::record> records;
  };

  store_actor store;
  std::shared_ptr<kafka::consumer_client> client;
  std::map<partition_key, partition_progress, partition_order> partitions;
  bool commit_scheduled = false;
  std::vector<pending_revocation> revocations;
  uint64_t next_revocation = 0;
  // One write at the store at a time, and what is read meanwhile gathers into the next: however
  // slow the store gets, a revocation waits for that one write (the leaving partitions' gathered
  // events are left to their next owner). With a write sent per poll, a starved store fell
  // seconds behind, past a revocation's wait, and the next owner read the backlog again. Bigger
  // writes when the store is slow also cost it less per event.
  bool writing = false;
  gathered next;
  // The polling thread's batch, answered once the gathered events have gone to the store, while
  // a write's worth of them waits: the backlog of a store slower than the topic stays in Kafka,
  // rather than in one ever larger next write that a revocation would have to wait for.
  caf::typed_response_promise<ok_atom> reader;
  // While the store cannot reach its database: consumption is paused, and the write it could
  // not take waits here for the next retry (what is read meanwhile gathers behind it).
  bool store_down = false;
  std::optional<write> held;
  std::chrono::milliseconds backoff{0};
  dead_letter_route dead_letters;
  std::unordered_map<uint64_t, pending_dead_letter> dead_letters_in_flight;
  uint64_t next_dead_letter_id = 1;

  // The partition's progress, tracked from now on if it was not yet.
  partition_progress& progress(std::string_view topic, int32_t partition);

  // Done positions are committed at most this often: one broker request covers many records,
  // and what a revocation or shutdown finds uncommitted is committed then.
  static constexpr std::chrono::milliseconds commit_interval{200};
  // How long a rebalance's revocation waits for the store's answers on records in flight, so
  // that the next owner does not read them again. Bounded: the whole group waits while one member
  // revokes. The revocation that closes the consumer waits up to the shutdown's deadline instead
  // (consumer_bridge::close_by).
  static constexpr std::chrono::milliseconds revoke_wait{3000};
  // At most this many events gather for the next write before the polling thread waits for the
  // store to take them: as many as one poll hands over.
  static constexpr size_t max_gathered = 1000;
  // The store is tried again after this, doubled on each failure up to the most.
  static constexpr std::chrono::milliseconds first_backoff{200};
  static constexpr std::chrono::milliseconds max_backoff{5000};
  static inline const char* name = "consumer";
};

consumer_actor_impl::behavior_type
consumer(consumer_actor_impl::stateful_pointer<consumer_state> self, store_actor store,
         std::shared_ptr<kafka::consumer_client> client, dead_letter_route dead_letters);

// Connects a consumer client's polling thread to the consumer actor, and to the store for where
// assigned partitions resume.
class consumer_bridge final : public kafka::consumer_listener {
public:
  consumer_bridge(caf::actor_system& sys, consumer_actor actor, store_actor store)
    : sys_{sys}, actor_{std::move(actor)}, store_{std::move(store)} {}
  void on_records(std::vector<kafka::record> batch) override;
  std::vector<kafka::partition_offset>
  on_revoked(const std::vector<kafka::partition_offset>& partitions) override;
  std::vector<kafka::partition_offset>
  on_assigned(const std::vector<kafka::partition_offset>& partitions) override;
  // Lets the polling thread's actor go, on that thread: shutdown waits for every actor to end.
  void on_closed() override { hand_.reset(); }
  // From now on the consumer is closing: its revocation waits for the store until `deadline`
  // rather than consumer_state::revoke_wait, so that a stopped instance hands its partitions over
  // with everything it read stored and committed.
  void close_by(std::chrono::steady_clock::time_point deadline) { close_deadline_ = deadline; }

private:
  caf::actor_system& sys_;
  consumer_actor actor_;
  store_actor store_;
  // The epoch (the default) while not closing. Set by main, read on the polling thread.
  std::atomic<std::chrono::steady_clock::time_point> close_deadline_{};
  // The polling thread's own actor for handing over batches, made on its first batch and kept
  // until the thread ends: a scoped actor per batch cost a wake-up of CAF's timer thread each
  // time it was destroyed.
  std::optional<caf::scoped_actor> hand_;
};

} // namespace uas
