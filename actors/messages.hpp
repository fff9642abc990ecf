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

#include "core/event.hpp"
#include "core/text_arena.hpp"
#include "core/reply_box.hpp"
#include "core/kafka_clients.hpp"

namespace uas {

// -- atoms --------------------------------------------------------------------

using add_if_new_atom = caf::atom_constant<caf::atom("addifnew")>;
using get_all_atom = caf::atom_constant<caf::atom("getall")>;
using get_json_atom = caf::atom_constant<caf::atom("getjson")>;
using has_atom = caf::atom_constant<caf::atom("has")>;
using count_atom = caf::atom_constant<caf::atom("count")>;
using clear_atom = caf::atom_constant<caf::atom("clear")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using deliveries_atom = caf::atom_constant<caf::atom("deliveries")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using records_atom = caf::atom_constant<caf::atom("records")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using revoke_due_atom = caf::atom_constant<caf::atom("revokedue")>;
using ok_atom = caf::ok_atom;

// -- store --------------------------------------------------------------------

// Events for the store in one message, shared rather than copied: the consumer reads them again
// for its log lines once the store has answered, and neither side changes them.
using event_batch = std::shared_ptr<const std::vector<event>>;

// Owns the processed events and their deduplication by eventId.
using store_actor = caf::typed_actor<
  // Stores the event unless one with its eventId is stored; true if it was new.
  caf::replies_to<add_if_new_atom, event>::with<bool>,
  // The same for each event of a batch, in order: one message for a whole poll.
  caf::replies_to<add_if_new_atom, event_batch>::with<std::vector<bool>>,
  // Every stored event, in the order it was first stored.
  caf::replies_to<get_all_atom>::with<std::vector<event>>,
  // The same as the JSON array GET /events/processed answers, read in place from the store's
  // memory (which it keeps alive) rather than copied: a GET costs the store next to nothing.
  caf::replies_to<get_json_atom>::with<shared_text>,
  // Whether an event with this eventId is stored.
  caf::replies_to<has_atom, std::string>::with<bool>,
  // How many events are stored.
  caf::replies_to<count_atom>::with<uint64_t>,
  // Forgets every stored event.
  caf::replies_to<clear_atom>::with<ok_atom>>;

// -- producer -----------------------------------------------------------------

// What became of each event of a batch, in the batch's order: empty once the broker
// acknowledged it, else why it failed every attempt.
using batch_outcome = std::vector<std::string>;

// Publishes events to the topic.
using producer_actor = caf::typed_actor<
  // Answers ok once the broker acknowledged the event, or an error once every attempt failed.
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

// Turns records from the topic into stored events and commits what is done.
using consumer_actor = caf::typed_actor<
  // A batch polled from the topic; answered once its events are on their way to the store, so
  // the polling thread never reads more than a batch ahead of the actor.
  caf::replies_to<records_atom, std::vector<kafka::record>>::with<ok_atom>,
  // These partitions are leaving: answers the positions done in them, to commit before they go,
  // once the store has answered for what they have in flight (or a bounded wait is over).
  caf::replies_to<revoke_atom, std::vector<kafka::partition_offset>>::with<
    std::vector<kafka::partition_offset>>>;

// The consumer's own messages on top of its public interface.
using consumer_actor_impl = consumer_actor::extend<
  // Time to commit the positions done since the last commit.
  caf::reacts_to<commit_atom>,
  // Revocation `id` has waited long enough for the store: answer what is done.
  caf::reacts_to<revoke_due_atom, uint64_t>>;

// -- http ---------------------------------------------------------------------

// The HTTP server's threads are not actors: each hands the http actor a box for the answer.
// A publish's outcome: answered when the broker acknowledged the event, else failed with why.
using publish_reply = std::shared_ptr<reply_box<ok_atom>>;
// A batch's outcome, each event's in order.
using batch_reply = std::shared_ptr<reply_box<batch_outcome>>;
// Every stored event as a JSON array, or why not.
using processed_reply = std::shared_ptr<reply_box<shared_text>>;

// Turns each HTTP route into a typed request to the actor that owns the answer.
using http_actor = caf::typed_actor<
  // POST /events/generate, validated and stamped: publish it and report the outcome.
  caf::reacts_to<publish_atom, event, publish_reply>,
  // POST /events/batch, its valid events: publish them in one message and report each outcome.
  caf::reacts_to<publish_atom, event_batch, batch_reply>,
  // GET /events/processed: every stored event, as a JSON array.
  caf::reacts_to<get_json_atom, processed_reply>>;

} // namespace uas

// Reply boxes, shared batches and shared text are local by nature: they never cross a process
// boundary, so need no serialization.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::publish_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::batch_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::processed_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::event_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(uas::shared_text)
