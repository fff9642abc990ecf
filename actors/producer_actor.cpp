#include "actors/producer_actor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>

#include "actors/log.hpp"
#include "actors/metrics.hpp"

namespace uas {

namespace {

using self_pointer = producer_actor_impl::stateful_pointer<producer_state>;

// Hands the event to the client; its report comes back as a message to this actor.
void attempt(self_pointer self, uint64_t id, const producer_state::pending& p) {
  producer_actor_impl handle = self;
  self->state.client->produce(p.value.user_id, p.json, [handle, id](std::string error) {
    caf::anon_send(handle, delivered_atom::value, id, std::move(error));
  });
}

} // namespace

producer_actor_impl::behavior_type
producer(self_pointer self, std::shared_ptr<kafka::producer_client> client, retry_policy policy) {
  self->state.client = std::move(client);
  self->state.policy = policy;
  return {
    [=](publish_atom, event& e) -> caf::typed_response_promise<ok_atom> {
      auto& st = self->state;
      auto id = st.next_id++;
      auto json = to_json(e);
      auto answer = self->make_response_promise<ok_atom>();
      auto& p = st.in_flight
                  .emplace(id, producer_state::pending{std::move(e), std::move(json), 1, answer})
                  .first->second;
      attempt(self, id, p);
      return answer;
    },
    [=](delivered_atom, uint64_t id, std::string& error) {
      auto& st = self->state;
      auto it = st.in_flight.find(id);
      if (it == st.in_flight.end())
        return;
      auto& p = it->second;
      if (error.empty()) {
        metrics::global().events_published.inc();
        p.answer.deliver(ok_atom::value);
        st.in_flight.erase(it);
        return;
      }
      auto attempts = st.policy.attempts();
      if (p.attempt >= attempts) {
        log::error("Publish failed after " + std::to_string(attempts) + " attempts",
                   {{"eventId", p.value.event_id}, {"error", error}});
        metrics::global().events_publish_failed.inc();
        p.answer.deliver(caf::make_error(caf::sec::runtime_error, std::move(error)));
        st.in_flight.erase(it);
        return;
      }
      auto delay = st.policy.delay_before(p.attempt);
      log::write(log::level::warn,
                 "Publish attempt " + std::to_string(p.attempt) + " of " + std::to_string(attempts)
                   + " failed",
                 {{"eventId", p.value.event_id}, {"error", error}},
                 "; retrying in " + std::to_string(delay.count()) + " ms");
      metrics::global().producer_retries.inc();
      self->delayed_send(self, delay, retry_atom::value, id);
    },
    [=](retry_atom, uint64_t id) {
      auto it = self->state.in_flight.find(id);
      if (it == self->state.in_flight.end())
        return;
      ++it->second.attempt;
      attempt(self, id, it->second);
    },
  };
}

} // namespace uas
