#include "actors/store_actor.hpp"

#include <functional>

#include "core/metrics.hpp"

namespace uas {

namespace {

// Where to_json puts the eventId's text: right after {"eventId":"
constexpr size_t id_offset = sizeof(R"({"eventId":")") - 1;

uint32_t hash_of(std::string_view id) {
  return static_cast<uint32_t>(std::hash<std::string_view>{}(id));
}

} // namespace

size_t store_state::slot_of(std::string_view id, uint32_t hash) const {
  size_t mask = slots.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    auto& s = slots[i];
    if (s.position_plus_one == 0 || (s.hash == hash && events[s.position_plus_one - 1].id == id))
      return i;
  }
}

void store_state::grow() {
  // Doubling stalls the store's thread, and the consumer with it: map the new table's pages at
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
  auto text = texts.keep(to_json(e), events.empty() ? "[" : ",");
  std::string_view id = text.substr(id_offset, e.event_id.size());
  if (id != e.event_id || text[id_offset + e.event_id.size()] != '"')
    id = escaped_ids.keep(e.event_id);
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
  escaped_ids.clear();
  slots.assign(initial_slots, slot{});
  metrics::global().store_events.set(0);
}

shared_text store_state::json_array() const {
  if (events.empty())
    return shared_text{"[]"};
  auto array = texts.contents();
  array.append("]");
  return array;
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
