// The store: processed events in processing order, each eventId once.
#pragma once

#include <deque>
#include <string_view>
#include <unordered_set>

#include "actors/messages.hpp"

namespace uas {

struct store_state {
  // A deque never moves its elements, so the index can point into them.
  std::deque<event> events;
  std::unordered_set<std::string_view> ids; // views of events[i].event_id

  static inline const char* name = "store";
};

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self);

} // namespace uas
