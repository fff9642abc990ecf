// The store: processed events in processing order, each eventId once. Events are kept as the
// JSON text GET /events/processed serves, so a read is a concatenation and not a serialization,
// and an event costs little more than its text.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"

namespace uas {

// Append-only storage for text: blocks that never move, so views into them stay valid, and no
// allocation (nor its bookkeeping) per piece.
class text_arena {
public:
  // A lasting copy of `text`.
  std::string_view keep(std::string_view text);
  void clear();

private:
  static constexpr size_t block_size = 256 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t used_ = block_size; // of the last block; full: the first keep() starts one
};

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

  text_arena texts;
  // Grows by blocks and never moves what it holds: a vector's doubling copied megabytes into as
  // many fresh pages (each page's first touch is dear on virtual machines) on the thread every
  // POST's answer also waits for.
  std::deque<stored> events;
  // Every stored eventId, by open addressing: a lookup reads an event's id only when the hash
  // matches, and growing the table moves small pairs instead of chasing one node per id.
  std::vector<slot> slots = std::vector<slot>(initial_slots);

  // Stores `e` unless its eventId is stored; true if it was new.
  bool add_if_new(const event& e);
  bool contains(std::string_view id) const;
  void clear();
  // The stored events as one JSON array.
  std::string json_array() const;

  static inline const char* name = "store";

private:
  // The slot holding `id`, or the empty one where it would go.
  size_t slot_of(std::string_view id, uint32_t hash) const;
  void grow();
};

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self);

} // namespace uas
