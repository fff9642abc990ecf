// The store: processed events in processing order, each eventId once. Events are kept as the
// JSON text GET /events/processed serves, so a read is a concatenation and not a serialization,
// and an event costs little more than its text.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "actors/messages.hpp"

namespace uas {

struct store_state {
  // Each event's JSON text. A deque never moves its elements, so views into them stay valid.
  std::deque<std::string> texts;
  // Every stored eventId: a view into its event's text, or into `escaped_ids` for the rare id
  // whose JSON form differs from the id itself.
  std::unordered_set<std::string_view> ids;
  std::deque<std::string> escaped_ids;

  // Stores `e` unless its eventId is stored; true if it was new.
  bool add_if_new(const event& e);
  // The stored events as one JSON array.
  std::string json_array() const;

  static inline const char* name = "store";
};

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self);

} // namespace uas
