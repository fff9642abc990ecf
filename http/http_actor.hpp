// The http actor: the HTTP server's door into the actor system. It relays each route to the
// actor that owns the answer and puts it in the waiting worker thread's reply box.
#pragma once

#include "actors/messages.hpp"

namespace uas {

struct http_state {
  producer_actor producer;
  store_actor store;

  static inline const char* name = "http";
};

http_actor::behavior_type http(http_actor::stateful_pointer<http_state> self,
                               producer_actor producer, store_actor store);

} // namespace uas
