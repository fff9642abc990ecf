// The producer: publishes each event through a producer client, and retries a failed attempt
// after a backoff that is a delayed message to itself, so nothing ever waits in a thread.
#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>

#include <caf/typed_response_promise.hpp>

#include "actors/messages.hpp"

namespace uas {

struct retry_policy {
  int retries = 3;                          // attempts after the first
  std::chrono::milliseconds backoff{500};   // retry n waits n x backoff

  std::chrono::milliseconds delay_before(int retry) const { return backoff * retry; }
  int attempts() const { return retries + 1; }
};

struct producer_state {
  // The events of one publish (a batch, or a single event as a batch of one), and its answer,
  // given once the last of them is settled.
  struct batch {
    event_batch events;
    batch_outcome outcome; // one entry per event, in order
    size_t unsettled = 0;
    caf::typed_response_promise<batch_outcome> answer; // a batch's
    caf::typed_response_promise<ok_atom> single_answer; // a single event's, when `single`
    bool single = false;
  };

  // One event on its way to the broker. Its message is written anew for each attempt rather
  // than kept: many thousands of messages held until their acknowledgement would cost a copy of
  // each beside its event, and as many frees.
  struct pending {
    std::shared_ptr<batch> of_batch;
    size_t index = 0; // in the batch
    int attempt = 1;

    const event& published() const { return (*of_batch->events)[index]; }
  };

  std::shared_ptr<kafka::producer_client> client;
  retry_policy policy;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, pending> in_flight;
  kafka::outgoing_message message; // each attempt's, written here (the client copies it)

  static inline const char* name = "producer";
};

producer_actor_impl::behavior_type
producer(producer_actor_impl::stateful_pointer<producer_state> self,
         std::shared_ptr<kafka::producer_client> client, retry_policy policy);

} // namespace uas
