#include "actors/store_actor.hpp"

#include "actors/metrics.hpp"

namespace uas {

store_actor::behavior_type store(store_actor::stateful_pointer<store_state> self) {
  return {
    [=](add_if_new_atom, event& e) {
      auto& st = self->state;
      if (st.ids.count(e.event_id) > 0)
        return false;
      st.events.push_back(std::move(e));
      st.ids.insert(st.events.back().event_id);
      metrics::global().store_events.set(static_cast<int64_t>(st.events.size()));
      return true;
    },
    [=](get_all_atom) {
      auto& events = self->state.events;
      return std::vector<event>(events.begin(), events.end());
    },
    [=](has_atom, const std::string& id) { return self->state.ids.count(id) > 0; },
    [=](count_atom) { return static_cast<uint64_t>(self->state.events.size()); },
    [=](clear_atom) {
      self->state.ids.clear();
      self->state.events.clear();
      metrics::global().store_events.set(0);
      return ok_atom::value;
    },
  };
}

} // namespace uas
