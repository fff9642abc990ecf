#include "http/http_actor.hpp"

#include <caf/event_based_actor.hpp>

namespace uas {

http_actor::behavior_type http(http_actor::stateful_pointer<http_state> self,
                               producer_actor producer, store_actor store) {
  self->state.producer = std::move(producer);
  self->state.store = std::move(store);
  return {
    [=](publish_atom, event& e, const publish_reply& reply) {
      self->request(self->state.producer, caf::infinite, publish_atom::value, std::move(e))
        .then([=](ok_atom ok) { reply->answer(ok); },
              [=](caf::error& err) {
                auto why = self->system().render(err);
                reply->fail(why.empty() ? "publish failed" : why);
              });
    },
    [=](publish_atom, const event_batch& events, const batch_reply& reply) {
      self->request(self->state.producer, caf::infinite, publish_atom::value, events)
        .then([=](batch_outcome& outcome) { reply->answer(std::move(outcome)); },
              [=](caf::error& err) {
                auto why = self->system().render(err);
                reply->fail(why.empty() ? "publish failed" : why);
              });
    },
    [=](get_json_atom, event_query& query, const processed_reply& reply) {
      self->request(self->state.store, caf::infinite, get_json_atom::value, std::move(query))
        .then([=](event_page& page) { reply->answer(std::move(page)); },
              [=](caf::error& err) { reply->fail(self->system().render(err), err); });
    },
    [=](find_atom, std::string& id, const event_reply& reply) {
      self->request(self->state.store, caf::infinite, find_atom::value, std::move(id))
        .then([=](std::string& text) { reply->answer(std::move(text)); },
              [=](caf::error& err) { reply->fail(self->system().render(err), err); });
    },
    [=](erase_atom, std::string& user, const erased_reply& reply) {
      self->request(self->state.store, caf::infinite, erase_atom::value, std::move(user))
        .then([=](uint64_t erased) { reply->answer(erased); },
              [=](caf::error& err) { reply->fail(self->system().render(err), err); });
    },
  };
}

} // namespace uas
