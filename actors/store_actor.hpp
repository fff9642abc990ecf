// The store: processed events in processing order, each eventId once. Events are kept as the
// JSON text GET /events/processed serves, laid out as its array, so a read shares that memory
// instead of copying or serializing it, and an event costs little more than its text.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"
#include "core/text_arena.hpp"

namespace uas {

struct store_state {
  struct stored {
    std::string_view text; // the event's JSON
    std::string_view id;   // its eventId: inside `text`, unless JSON had to escape it
  };
  // A place in the id index: which event (position + 1; 0 for none) and its id's hash.
  struct slot {
    uint32_t position_plus_one = 0;
    uint32_t hash = 0;
  };
  static constexpr size_t initial_slots = 1024;

  // Each event's JSON, after a "[" (the first) or a "," (the others): in order, the arena reads
  // as GET /events/processed's array but for its closing bracket.
  text_arena texts;
  // The eventIds JSON had to escape, as they are.
  text_arena escaped_ids;
  // Grows by blocks and never moves what it holds: a vector's doubling copied megabytes into as
  // many fresh pages (each page's first touch is dear on virtual machines).
  std::deque<stored> events;
  // Every stored eventId, by open addressing: a lookup reads an event's id only when the hash
  // matches, and growing the table moves small pairs instead of chasing one node per id.
  std::vector<slot> slots = std::vector<slot>(initial_slots);

  // Stores `e` unless its eventId is stored; true if it was new.
  bool add_if_new(const event& e);
  bool contains(std::string_view id) const;
  void clear();
  // The stored events as one JSON array, shared out of the arena rather than copied.
  shared_text json_array() const;

  static inline const char* name = "store";

private:
  // The slot holding `id`, or the empty one where it would go.
  size_t slot_of(std::string_view id, uint32_t hash) const;
  void grow();
};

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self);

} // namespace uas
