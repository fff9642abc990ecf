#include "actors/store_actor.hpp"

#include "core/log.hpp"

namespace uas {

namespace {

using self_pointer = store_actor_impl::stateful_pointer<store_state>;

void expire(self_pointer self) {
  auto& st = self->state;
  auto cutoff = std::chrono::system_clock::now() - st.retention;
  auto expired = st.backend->expire(cutoff, store_state::expire_batch);
  if (!expired) {
    log::warn("Expiring old events failed", {{"error", self->system().render(expired.error())}});
  } else if (*expired > 0) {
    log::info("Expired stored events", {{"count", static_cast<int64_t>(*expired)},
                                        {"retentionDays", static_cast<int64_t>(st.retention.count() / 24)}});
    if (*expired == store_state::expire_batch) {
      self->send(self, expire_atom::value);
      return;
    }
  }
  self->delayed_send(self, store_state::expire_interval, expire_atom::value);
}

} // namespace

store_actor_impl::behavior_type store(self_pointer self, std::shared_ptr<store_backend> backend,
                                      std::chrono::hours retention) {
  self->state.backend = std::move(backend);
  self->state.retention = retention;
  if (retention.count() > 0)
    self->send(self, expire_atom::value);
  if (self->state.backend->remote())
    self->delayed_send(self, store_state::probe_interval, probe_atom::value);
  return {
    [=](add_if_new_atom, const event_batch& batch, const origin_batch& origins,
        const origin_batch& resume) -> caf::result<std::vector<write_outcome>> {
      auto outcomes = self->state.backend->add_if_new(*batch, *origins, *resume);
      if (!outcomes)
        return std::move(outcomes.error());
      return std::move(*outcomes);
    },
    [=](positions_atom, const std::vector<kafka::partition_offset>& partitions)
      -> caf::result<std::vector<kafka::partition_offset>> {
      auto known = self->state.backend->positions(partitions);
      if (!known)
        return std::move(known.error());
      return std::move(*known);
    },
    [=](get_json_atom, const event_query& query) -> caf::result<event_page> {
      auto page = self->state.backend->read(query);
      if (!page)
        return std::move(page.error());
      return std::move(*page);
    },
    [=](find_atom, const std::string& id) -> caf::result<std::string> {
      auto text = self->state.backend->find(id);
      if (!text)
        return std::move(text.error());
      return std::move(*text);
    },
    [=](erase_atom, const std::string& user) -> caf::result<uint64_t> {
      auto erased = self->state.backend->erase_user(user);
      if (!erased)
        return std::move(erased.error());
      log::info("Erased stored events", {{"userId", user}, {"count", static_cast<int64_t>(*erased)}});
      return *erased;
    },
    [=](expire_atom) { expire(self); },
    [=](probe_atom) {
      self->state.backend->probe();
      self->delayed_send(self, store_state::probe_interval, probe_atom::value);
    },
  };
}

} // namespace uas
