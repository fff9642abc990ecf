// Where the store actor keeps the processed events: one small interface over the back ends
// (core/memory_store.hpp, store/postgres_store.hpp), so that the actor's logic is the same for
// each and actor-level tests can put a fake in their place to script outages.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "core/event.hpp"
#include "core/kafka_clients.hpp"
#include "core/text_arena.hpp"

namespace uas {

// Why a store operation failed. These cross actor boundaries as CAF errors of category "store"
// (make_error below), so that a receiver decides by the code, not by a message's wording.
enum class store_error : uint8_t {
  unavailable = 1, // the database cannot be reached now: the same request may succeed later
  not_found,       // no stored event has this eventId
  failed,          // the database refused the request for a reason retrying will not change
};

caf::error make_error(store_error code, std::string detail = {});
std::string to_string(store_error code);
// The detail a store error was made with; empty if none.
std::string detail_of(const caf::error& err);
// Renders errors of category "store" for caf::actor_system::render: register it with
// `cfg.add_error_category(store_error_category, render_store_error)`.
constexpr caf::atom_value store_error_category = caf::atom("store");
std::string render_store_error(uint8_t code, caf::atom_value, const caf::message& context);

// What became of one event handed to add_if_new.
enum class write_status : uint8_t {
  added,     // stored: its eventId was new
  duplicate, // an event with its eventId is stored already (or earlier in the same batch)
  rejected,  // the database refused this event's data: retrying cannot help
};

struct write_outcome {
  write_status status = write_status::added;
  std::string reason; // why, when rejected

  friend bool operator==(const write_outcome& a, const write_outcome& b) {
    return a.status == b.status && a.reason == b.reason;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_outcome& x) {
  return f(x.status, x.reason);
}

// Which stored events a read wants, in processing order.
struct event_query {
  uint64_t after = 0;     // a page's cursor: only events stored after this one (0: from the start)
  uint32_t limit = 0;     // at most this many (0: all)
  std::string user_id;    // only this user's (empty: anyone's)
  std::string event_type; // only of this type (empty: any)

  bool everything() const {
    return after == 0 && limit == 0 && user_id.empty() && event_type.empty();
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_query& x) {
  return f(x.after, x.limit, x.user_id, x.event_type);
}

// The answer to a query: the events as one JSON array, and where the next page starts.
struct event_page {
  shared_text json;
  uint64_t next = 0; // the cursor for the next page; 0 when no event follows this page
};

class store_backend {
public:
  virtual ~store_backend() = default;

  // Stores each event of `batch`, in order, unless an event with its eventId is stored (an
  // earlier one in the batch included); one outcome per event. `origins[i]` is where batch[i]
  // was read from the topic. `resume` names, for partitions of the batch, where reading them
  // starts once the batch is stored: a back end that keeps read positions (PostgreSQL) stores
  // them in the same transaction as the events, never moving one back, and never past an event
  // it rejects. Either every event is answered for, or none is stored (an error):
  // store_error::unavailable is worth retrying.
  virtual caf::expected<std::vector<write_outcome>>
  add_if_new(const std::vector<event>& batch, const std::vector<kafka::partition_offset>& origins,
             const std::vector<kafka::partition_offset>& resume) = 0;

  // Where reading partitions starts, as the read positions stored with the events say, given
  // the group's last commit of each (`offset` below 0: none): one entry for each partition with
  // a commit whose position it knows (none from a back end that keeps no positions). A partition
  // without a commit forgets its position: the group is new, or the topic was made again (the
  // embedded broker's are on each start) and its offsets now mean other messages.
  virtual caf::expected<std::vector<kafka::partition_offset>>
  positions(const std::vector<kafka::partition_offset>& committed) {
    (void)committed;
    return std::vector<kafka::partition_offset>{};
  }

  // The stored events `query` selects, in the order they were first stored.
  virtual caf::expected<event_page> read(const event_query& query) = 0;

  // One stored event's JSON, or store_error::not_found.
  virtual caf::expected<std::string> find(const std::string& event_id) = 0;

  // Erases every stored event of `user_id`; how many there were.
  virtual caf::expected<uint64_t> erase_user(const std::string& user_id) = 0;

  // Erases at most `at_most` of the events stored before `cutoff`, the oldest first; how many.
  virtual caf::expected<uint64_t> expire(std::chrono::system_clock::time_point cutoff,
                                         uint64_t at_most) = 0;

  // False while the back end cannot reach its database (as of its last attempt). Any thread.
  virtual bool up() const { return true; }

  // Whether the back end holds a connection to a database that can be lost, and so wants
  // probe() now and then.
  virtual bool remote() const { return false; }

  // Tries the database now, connecting again if the connection was lost, so that up() tells
  // the truth while no request comes (an idle service's readiness).
  virtual void probe() {}

  // From another thread, once nothing waits for the store any more (the shutdown): cancels the
  // call running now, which then fails whole (a write stores nothing, its read positions stay),
  // and fails every later call at once, so that no database call holds up the exit. The events
  // the cancelled call was writing (0: a call that writes none); nothing when no call was
  // cancelled.
  virtual std::optional<uint64_t> cancel() { return std::nullopt; }
};

} // namespace uas
