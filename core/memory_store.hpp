// The store's back end in memory: processed events in processing order, each eventId once, up to
// a bound beyond which the oldest leave. Events are kept as the JSON text GET /events/processed
// serves, one after another in blocks that never move, so that reading them all shares that
// memory instead of copying or serializing it, and an event costs little more than its text.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/store_backend.hpp"
#include "core/text_arena.hpp"

namespace uas {

class memory_store final : public store_backend {
public:
  using clock = std::function<std::chrono::system_clock::time_point()>;

  // Keeps at most `max_events`; `now` stamps each event's storing time (for expire).
  explicit memory_store(uint64_t max_events = 1'000'000,
                        clock now = [] { return std::chrono::system_clock::now(); });

  caf::expected<std::vector<write_outcome>>
  add_if_new(const std::vector<event>& batch, const std::vector<kafka::partition_offset>& origins,
             const std::vector<kafka::partition_offset>& resume) override;
  caf::expected<event_page> read(const event_query& query) override;
  caf::expected<std::string> find(const std::string& event_id) override;
  caf::expected<uint64_t> erase_user(const std::string& user_id) override;
  caf::expected<uint64_t> expire(std::chrono::system_clock::time_point cutoff,
                                 uint64_t at_most) override;

  // How many events are stored.
  size_t size() const { return events_.size(); }

private:
  // One stored event: its JSON text, with its id, user and type found inside it as to_json
  // lays them out (escaped as there).
  struct stored {
    std::string_view text;
    uint64_t seq;       // its place in processing order, from 1: a page's cursor
    int64_t stored_ms;  // when it was stored, in ms since the epoch
    uint32_t id_size;
    uint32_t user_size;
    uint32_t type_size;

    std::string_view id() const;
    std::string_view user() const;
    std::string_view type() const;
  };
  // A place in the id index: which event (its position's tag; 0 for none) and its id's hash.
  struct slot {
    uint32_t tag = 0;
    uint32_t hash = 0;
  };
  static constexpr size_t initial_slots = 1024;

  write_status add(const event& e);
  // Keeps `text` (an event's JSON, with the sizes of its escaped fields) as the newest event.
  void keep(std::string_view text, uint64_t seq, int64_t stored_ms, uint32_t id_size,
            uint32_t user_size, uint32_t type_size);
  void drop_oldest();
  // The slot holding the escaped `id`, or the empty one where it would go.
  size_t slot_of(std::string_view id, uint32_t hash) const;
  void free_slot(size_t i);
  void grow();
  uint32_t tag_of(uint64_t position) const;
  size_t index_of(uint32_t tag) const;
  void count_stored() const;

  uint64_t max_events_;
  clock now_;
  uint64_t next_seq_ = 1;
  // Each event's JSON after a ",": read from the oldest event's text on, the arena is
  // GET /events/processed's array but for its brackets.
  text_arena texts_;
  // Grows by blocks and never moves what it holds: a vector's doubling copied megabytes into as
  // many fresh pages (each page's first touch is dear on virtual machines).
  std::deque<stored> events_;
  // The position (counting every event ever kept) of events_.front(): an event's position less
  // this is its index, so dropping the oldest moves no slot.
  uint64_t front_position_ = 0;
  // Every stored eventId, by open addressing: a lookup reads an event's id only when the hash
  // matches, and growing the table moves small pairs instead of chasing one node per id.
  std::vector<slot> slots_ = std::vector<slot>(initial_slots);
  bool said_full_ = false;
};

} // namespace uas
