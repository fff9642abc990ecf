#include "actors/producer_actor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>

#include "core/log.hpp"
#include "core/message_contract.hpp"
#include "core/metrics.hpp"
#include "core/trace_context.hpp"

namespace uas {

namespace {

using self_pointer = producer_actor_impl::stateful_pointer<producer_state>;

// Hands the event to the client; its report comes back through take_deliveries.
void attempt(self_pointer self, uint64_t id, const producer_state::pending& p) {
  auto& st = self->state;
  write_event_message(p.published(), st.message);
  st.client->produce(st.message, id);
}

// Takes in the events of `b` and makes each one's first attempt.
void start(self_pointer self, std::shared_ptr<producer_state::batch> b) {
  auto& st = self->state;
  b->outcome.resize(b->events->size());
  b->unsettled = b->events->size();
  for (size_t i = 0; i < b->events->size(); ++i) {
    auto id = st.next_id++;
    attempt(self, id, st.in_flight.emplace(id, producer_state::pending{b, i}).first->second);
  }
}

// Writes a line about a failed attempt of `p`, naming the event, why, and the trace it belongs to
// (its trace id parsed only here: most events never fail).
void log_failure(log::level lvl, const std::string& message, const producer_state::pending& p,
                 const std::string& error, std::string_view tail = {}) {
  auto& e = p.published();
  auto trace_id = trace_id_of(e.traceparent); // outlives the fields' views
  log::field_list fs{{"eventId", e.event_id}, {"error", error}};
  if (!trace_id.empty())
    fs.push_back({"traceId", trace_id});
  log::write(lvl, message, fs, tail);
}

// Gives publish `p` its outcome (empty once acknowledged, else why it failed), and its batch
// its answer once that was the last.
void answer(producer_state::pending& p, std::string error) {
  auto& b = *p.of_batch;
  b.outcome[p.index] = std::move(error);
  if (--b.unsettled > 0)
    return;
  if (!b.single)
    b.answer.deliver(std::move(b.outcome));
  else if (b.outcome[0].empty())
    b.single_answer.deliver(ok_atom::value);
  else
    b.single_answer.deliver(make_error(publish_error::attempts_exhausted, std::move(b.outcome[0])));
}

// Answers publish `id` once acknowledged or out of attempts; otherwise schedules the next one.
void settle(self_pointer self, kafka::delivery& report) {
  auto& st = self->state;
  auto it = st.in_flight.find(report.id);
  if (it == st.in_flight.end())
    return;
  auto& p = it->second;
  if (report.error.empty()) {
    metrics::global().events_published.inc();
    answer(p, {});
    st.in_flight.erase(it);
    return;
  }
  auto attempts = st.policy.attempts();
  if (p.attempt >= attempts) {
    log_failure(log::level::error, "Publish failed after " + std::to_string(attempts) + " attempts",
                p, report.error);
    metrics::global().events_publish_failed.inc();
    answer(p, std::move(report.error));
    st.in_flight.erase(it);
    return;
  }
  auto delay = st.policy.delay_before(p.attempt);
  log_failure(log::level::warn,
              "Publish attempt " + std::to_string(p.attempt) + " of " + std::to_string(attempts)
                + " failed",
              p, report.error, "; retrying in " + std::to_string(delay.count()) + " ms");
  metrics::global().producer_retries.inc();
  self->delayed_send(self, delay, retry_atom::value, report.id);
}

} // namespace

caf::error make_error(publish_error code, std::string detail) {
  return {static_cast<uint8_t>(code), publish_error_category, caf::make_message(std::move(detail))};
}

std::string render_publish_error(uint8_t, caf::atom_value, const caf::message& context) {
  std::string text = "publish failed after every attempt";
  if (context.match_elements<std::string>())
    text += ": " + context.get_as<std::string>(0);
  return text;
}

producer_actor_impl::behavior_type
producer(self_pointer self, std::shared_ptr<kafka::producer_client> client, retry_policy policy) {
  self->state.client = std::move(client);
  self->state.policy = policy;
  // Weak: the client lives in this actor's state and must not keep the actor alive in turn.
  caf::weak_actor_ptr weak = self->ctrl();
  self->state.client->notify_deliveries([weak] {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<producer_actor_impl>(strong), deliveries_atom::value);
  });
  return {
    [=](publish_atom, event& e) -> caf::typed_response_promise<ok_atom> {
      auto b = std::make_shared<producer_state::batch>();
      auto events = std::make_shared<std::vector<event>>();
      events->push_back(std::move(e));
      b->events = std::move(events);
      b->single = true;
      b->single_answer = self->make_response_promise<ok_atom>();
      auto promise = b->single_answer;
      start(self, std::move(b));
      return promise;
    },
    [=](publish_atom, const event_batch& events) -> caf::typed_response_promise<batch_outcome> {
      auto b = std::make_shared<producer_state::batch>();
      b->events = events;
      b->answer = self->make_response_promise<batch_outcome>();
      auto promise = b->answer;
      if (events->empty())
        b->answer.deliver(batch_outcome{});
      start(self, std::move(b));
      return promise;
    },
    [=](deliveries_atom) {
      for (auto& report : self->state.client->take_deliveries())
        settle(self, report);
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
