#include "actors/store_actor.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

#include <sys/mman.h>
#include <unistd.h>

#include "actors/metrics.hpp"

namespace uas {

namespace {

// Where to_json puts the eventId's text: right after {"eventId":"
constexpr size_t id_offset = sizeof(R"({"eventId":")") - 1;

uint32_t hash_of(std::string_view id) {
  return static_cast<uint32_t>(std::hash<std::string_view>{}(id));
}

// Maps the whole pages of [at, at + size) in one system call, before they are written. Written
// first, each page traps on its own, which virtual machines make dear: about 12 us a page on the
// one docs/performance.md measures (session 8), against about 3 this way. Kernels before 5.14
// refuse the call; their pages then fault in as they are written.
void prefault(char* at, size_t size) {
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto begin = (reinterpret_cast<uintptr_t>(at) + page - 1) & ~(page - 1);
  auto end = (reinterpret_cast<uintptr_t>(at) + size) & ~(page - 1);
  if (end > begin)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

} // namespace

std::string_view text_arena::keep(std::string_view text) {
  if (used_ + text.size() > block_size || blocks_.empty()) {
    // A text longer than a block gets a block of its own size.
    auto size = std::max(block_size, text.size());
    blocks_.push_back(std::unique_ptr<char[]>(new char[size])); // uninitialized: only written
    prefault(blocks_.back().get(), size);
    used_ = 0;
  }
  char* at = blocks_.back().get() + used_;
  std::memcpy(at, text.data(), text.size());
  used_ += text.size();
  return {at, text.size()};
}

void text_arena::clear() {
  blocks_.clear();
  used_ = block_size;
}

size_t store_state::slot_of(std::string_view id, uint32_t hash) const {
  size_t mask = slots.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    auto& s = slots[i];
    if (s.position_plus_one == 0 || (s.hash == hash && events[s.position_plus_one - 1].id == id))
      return i;
  }
}

void store_state::grow() {
  // Doubling happens on the thread every POST's answer waits for: map the new table's pages at
  // once (2 MB at about 92,000 events) rather than page by page as its zeros are written.
  auto size = slots.size() * 2;
  std::vector<slot> bigger;
  bigger.reserve(size);
  prefault(reinterpret_cast<char*>(bigger.data()), size * sizeof(slot));
  bigger.resize(size);
  size_t mask = bigger.size() - 1;
  for (auto& s : slots) {
    if (s.position_plus_one == 0)
      continue;
    size_t i = s.hash & mask;
    while (bigger[i].position_plus_one != 0)
      i = (i + 1) & mask;
    bigger[i] = s;
  }
  slots.swap(bigger);
}

bool store_state::add_if_new(const event& e) {
  // At most 70 % full, so that probes stay short.
  if ((events.size() + 1) * 10 > slots.size() * 7)
    grow();
  auto hash = hash_of(e.event_id);
  auto& place = slots[slot_of(e.event_id, hash)];
  if (place.position_plus_one != 0)
    return false;
  auto text = texts.keep(to_json(e));
  std::string_view id = text.substr(id_offset, e.event_id.size());
  if (id != e.event_id || text[id_offset + e.event_id.size()] != '"')
    id = texts.keep(e.event_id); // escaped in the JSON: kept as it is, beside it
  events.push_back({text, id});
  place = {static_cast<uint32_t>(events.size()), hash};
  metrics::global().store_events.set(static_cast<int64_t>(events.size()));
  return true;
}

bool store_state::contains(std::string_view id) const {
  return slots[slot_of(id, hash_of(id))].position_plus_one != 0;
}

void store_state::clear() {
  events.clear();
  texts.clear();
  slots.assign(initial_slots, slot{});
  metrics::global().store_events.set(0);
}

std::string store_state::json_array() const {
  size_t size = 2;
  for (auto& e : events)
    size += e.text.size() + 1;
  std::string out;
  out.reserve(size);
  prefault(out.data(), size);
  out += '[';
  for (auto& e : events) {
    if (out.size() > 1)
      out += ',';
    out += e.text;
  }
  out += ']';
  return out;
}

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self) {
  return {
    [=](add_if_new_atom, const event& e) { return self->state.add_if_new(e); },
    [=](add_if_new_atom, const event_batch& batch) {
      std::vector<bool> added;
      added.reserve(batch->size());
      for (auto& e : *batch)
        added.push_back(self->state.add_if_new(e));
      return added;
    },
    [=](get_all_atom) {
      std::vector<event> all;
      all.reserve(self->state.events.size());
      for (auto& e : self->state.events)
        all.push_back(parse_event_message(e.text).value);
      return all;
    },
    [=](get_json_atom) { return self->state.json_array(); },
    [=](has_atom, const std::string& id) { return self->state.contains(id); },
    [=](count_atom) { return static_cast<uint64_t>(self->state.events.size()); },
    [=](clear_atom) {
      self->state.clear();
      return ok_atom::value;
    },
  };
}

} // namespace uas
