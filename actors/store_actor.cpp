#include "actors/store_actor.hpp"

#include "actors/metrics.hpp"

namespace uas {

namespace {

// Where to_json puts the eventId's text: right after {"eventId":"
constexpr size_t id_offset = sizeof(R"({"eventId":")") - 1;

} // namespace

bool store_state::add_if_new(const event& e) {
  if (ids.count(e.event_id) > 0)
    return false;
  const auto& text = texts.emplace_back(to_json(e));
  std::string_view written{text.data() + id_offset, e.event_id.size()};
  if (written == e.event_id && text[id_offset + e.event_id.size()] == '"')
    ids.insert(written);
  else
    ids.insert(escaped_ids.emplace_back(e.event_id));
  metrics::global().store_events.set(static_cast<int64_t>(texts.size()));
  return true;
}

std::string store_state::json_array() const {
  size_t size = 2;
  for (auto& t : texts)
    size += t.size() + 1;
  std::string out;
  out.reserve(size);
  out += '[';
  for (auto& t : texts) {
    if (out.size() > 1)
      out += ',';
    out += t;
  }
  out += ']';
  return out;
}

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self) {
  return {
    [=](add_if_new_atom, const event& e) { return self->state.add_if_new(e); },
    [=](add_if_new_atom, const std::vector<event>& batch) {
      std::vector<bool> added;
      added.reserve(batch.size());
      for (auto& e : batch)
        added.push_back(self->state.add_if_new(e));
      return added;
    },
    [=](get_all_atom) {
      std::vector<event> events;
      events.reserve(self->state.texts.size());
      for (auto& text : self->state.texts)
        events.push_back(parse_event_message(text).value);
      return events;
    },
    [=](get_json_atom) { return self->state.json_array(); },
    [=](has_atom, const std::string& id) { return self->state.ids.count(id) > 0; },
    [=](count_atom) { return static_cast<uint64_t>(self->state.texts.size()); },
    [=](clear_atom) {
      auto& st = self->state;
      st.ids.clear();
      st.texts.clear();
      st.escaped_ids.clear();
      metrics::global().store_events.set(0);
      return ok_atom::value;
    },
  };
}

} // namespace uas
