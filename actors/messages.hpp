// The table of contents of the service's conversations: the atoms and every actor's typed
// interface. The compiler checks each send against these declarations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>

#include "core/event.hpp"
#include "core/text_arena.hpp"
#include "core/reply_box.hpp"
#include "core/store_backend.hpp"
#include "core/kafka_clients.hpp"

namespace uas {

// -- atoms --------------------------------------------------------------------

using add_if_new_atom = caf::atom_constant<caf::atom("addifnew")>;
using get_json_atom = caf::atom_constant<caf::atom("getjson")>;
using find_atom = caf::atom_constant<caf::atom("find")>;
using erase_atom = caf::atom_constant<caf::atom("erase")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using probe_atom = caf::atom_constant<caf::atom("probe")>;
using positions_atom = caf::atom_constant<caf::atom("positions")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using deliveries_atom = caf::atom_constant<caf::atom("deliveries")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using records_atom = caf::atom_constant<caf::atom("records")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using revoke_due_atom = caf::atom_constant<caf::atom("revokedue")>;
using dead_letter_reports_atom = caf::atom_constant<caf::atom("dlqreports")>;
using dead_letter_retry_atom = caf::atom_constant<caf::atom("dlqretry")>;
using ok_atom = caf::ok_atom;

// -- store --------------------------------------------------------------------

// Events for the store in one message, shared rather than copied: the consumer reads them again
// for its log lines once the store has answered, and neither side changes them.
using event_batch = std::shared_ptr<const std::vector<event>>;
// Where each event of a batch was read from the topic, in the same order; and, for a batch's
// partitions, where reading them starts once it is stored.
using origin_batch = std::shared_ptr<const std::vector<kafka::partition_offset>>;

// Owns the processed events and their deduplication by eventId, in whichever back end
// (core/store_backend.hpp). Its errors are store_error codes.
using store_actor = caf::typed_actor<
  // Stores each event of a batch (a whole poll) unless its eventId is stored, in order, with the
  // positions its partitions resume from (store_backend::add_if_new); answers one outcome per
  // event once they are durable. store_error::unavailable: nothing was stored, and the same
  // batch may be sent again later.
  caf::replies_to<add_if_new_atom, event_batch, origin_batch, origin_batch>::with<
    std::vector<write_outcome>>,
  // Where reading partitions starts, as the positions stored with the events say, given the
  // group's last commits (store_backend::positions).
  caf::replies_to<positions_atom, std::vector<kafka::partition_offset>>::with<
    std::vector<kafka::partition_offset>>,
  // The stored events a query selects, as the JSON array GET /events/processed answers. The
  // whole store is read in place from the memory store's blocks (which the answer keeps alive)
  // rather than copied: a GET of everything costs that store next to nothing.
  caf::replies_to<get_json_atom, event_query>::with<event_page>,
  // One stored event's JSON by its eventId, or store_error::not_found.
  caf::replies_to<find_atom, std::string>::with<std::string>,
  // Erases one user's stored events; answers how many there were.
  caf::replies_to<erase_atom, std::string>::with<uint64_t>>;

// The store's own messages on top of its public interface.
using store_actor_impl = store_actor::extend<
  // Time to erase events older than the retention period (a batch of them).
  caf::reacts_to<expire_atom>,
  // Time to try the database, so that readiness follows it while no request comes.
  caf::reacts_to<probe_atom>>;

// -- producer -----------------------------------------------------------------

// What became of each event of a batch, in the batch's order: empty once the broker
// acknowledged it, else why it failed every attempt.
using batch_outcome = std::vector<std::string>;

// Why the producer answers a publish with an error (category "publish"; render it with
// `cfg.add_error_category(publish_error_category, render_publish_error)`).
enum class publish_error : uint8_t {
  attempts_exhausted = 1, // every attempt failed; the detail is the broker's last error
};
constexpr caf::atom_value publish_error_category = caf::atom("publish");
caf::error make_error(publish_error code, std::string detail);
std::string render_publish_error(uint8_t code, caf::atom_value, const caf::message& context);

// Publishes events to the topic.
using producer_actor = caf::typed_actor<
  // Answers ok once the broker acknowledged the event, or publish_error::attempts_exhausted.
  caf::replies_to<publish_atom, event>::with<ok_atom>,
  // Publishes every event of a batch, each retried on its own; answers once each is settled.
  caf::replies_to<publish_atom, event_batch>::with<batch_outcome>>;

// The producer's own messages on top of its public interface.
using producer_actor_impl = producer_actor::extend<
  // The client may hold delivery reports: take them.
  caf::reacts_to<deliveries_atom>,
  // Backoff for publish `id` is over: try again.
  caf::reacts_to<retry_atom, uint64_t>>;

// -- consumer -----------------------------------------------------------------

// Turns records from the topic into stored events, sends what it cannot store to the dead-letter
// topic, and commits what is done.
using consumer_actor = caf::typed_actor<
  // A batch polled from the topic; answered once taken, so the polling thread never reads more
  // than a batch ahead of the actor; or, while a write's worth of events waits for the store,
  // once those have gone to it, so that it never reads far ahead of the store either.
  caf::replies_to<records_atom, std::vector<kafka::record>>::with<ok_atom>,
  // These partitions are leaving: answers the positions done in them, to commit before they go,
  // once the store has answered for what they have in flight, or once the wait given is over.
  caf::replies_to<revoke_atom, std::vector<kafka::partition_offset>, caf::timespan>::with<
    std::vector<kafka::partition_offset>>>;

// The consumer's own messages on top of its public interface.
using consumer_actor_impl = consumer_actor::extend<
  // Time to commit the positions done since the last commit.
  caf::reacts_to<commit_atom>,
  // Revocation `id` has waited long enough for the store: answer what is done.
  caf::reacts_to<revoke_due_atom, uint64_t>,
  // The store's backoff is over: send it again the write it could not take.
  caf::reacts_to<retry_atom>,
  // The dead-letter producer may hold delivery reports: take them.
  caf::reacts_to<dead_letter_reports_atom>,
  // Backoff for dead letter `id` is over: send it again.
  caf::reacts_to<dead_letter_retry_atom, uint64_t>>;

// -- http ---------------------------------------------------------------------

// The HTTP server's threads are not actors: each hands the http actor a box for the answer.
// A publish's outcome: answered when the broker acknowledged the event, else failed with why.
using publish_reply = std::shared_ptr<reply_box<ok_atom>>;
// A batch's outcome, each event's in order.
using batch_reply = std::shared_ptr<reply_box<batch_outcome>>;
// Stored events as a JSON array (a page of them), or why not.
using processed_reply = std::shared_ptr<reply_box<event_page>>;
// One stored event's JSON, or why not (store_error::not_found among the reasons).
using event_reply = std::shared_ptr<reply_box<std::string>>;
// How many events were erased, or why none.
using erased_reply = std::shared_ptr<reply_box<uint64_t>>;

// Turns each HTTP route into a typed request to the actor that owns the answer.
using http_actor = caf::typed_actor<
  // POST /events/generate, validated and stamped: publish it and report the outcome.
  caf::reacts_to<publish_atom, event, publish_reply>,
  // POST /events/batch, its valid events: publish them in one message and report each outcome.
  caf::reacts_to<publish_atom, event_batch, batch_reply>,
  // GET /events/processed: the stored events the query selects, as a JSON array.
  caf::reacts_to<get_json_atom, event_query, processed_reply>,
  // GET /events/processed/{eventId}: one stored event.
  caf::reacts_to<find_atom, std::string, event_reply>,
  // DELETE /events/processed?userId=: erases one user's stored events.
  caf::reacts_to<erase_atom, std::string, erased_reply>>;

} // namespace uas

// Reply boxes, shared batches and shared text (and pages of it) are local by nature: they never
// cross a process boundary, so need no serialization.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::publish_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::batch_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::processed_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::event_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::erased_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::event_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::origin_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::shared_text)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::event_page)
