#include "actors/consumer_actor.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace uas {

void partition_progress::track(int64_t offset) {
  if (pending.empty() && done_upto < 0)
    began = committed = done_upto = offset; // reading began here: the group's position already
  pending.emplace_back(offset, false);
}

bool partition_progress::finish(int64_t offset) {
  auto it = std::lower_bound(pending.begin(), pending.end(), std::make_pair(offset, false));
  if (it == pending.end() || it->first != offset)
    return false;
  it->second = true;
  bool moved = false;
  while (!pending.empty() && pending.front().second) {
    // max: a record read again (after a seek) never moves the position back.
    done_upto = std::max(done_upto, pending.front().first + 1);
    pending.pop_front();
    moved = true;
  }
  return moved;
}

partition_progress& consumer_state::progress(std::string_view topic, int32_t partition) {
  auto it = partitions.find(partition_ref{topic, partition});
  if (it == partitions.end())
    it = partitions.emplace(partition_key{topic, partition}, partition_progress{}).first;
  return it->second;
}

namespace {

using self_pointer = consumer_actor_impl::stateful_pointer<consumer_state>;

// Where a record sits: what every consumer log line names.
using position = kafka::partition_offset;

void skip(const position& p, const std::string& reason) {
  log::warn("Skipped message",
            {{"reason", reason}, {"topic", p.topic}, {"partition", p.partition}, {"offset", p.offset}});
}

// Whether the store has answered for every record read from these partitions.
bool settled(const consumer_state& st, const std::vector<kafka::partition_offset>& leaving) {
  for (auto& p : leaving)
    if (auto it = st.partitions.find(consumer_state::partition_ref{p.topic, p.partition});
        it != st.partitions.end() && !it->second.pending.empty())
      return false;
  return true;
}

// Stops tracking the leaving partitions; the positions done in them, to commit before they go.
// Those already handed to the client are answered too: the client commits them on its own
// schedule, which may come after the partitions have gone.
std::vector<kafka::partition_offset> let_go(consumer_state& st,
                                            const std::vector<kafka::partition_offset>& leaving) {
  std::vector<kafka::partition_offset> done;
  for (auto& p : leaving) {
    auto it = st.partitions.find(consumer_state::partition_ref{p.topic, p.partition});
    if (it == st.partitions.end())
      continue;
    if (it->second.has_progress())
      done.push_back({p.topic, p.partition, it->second.done_upto});
    st.partitions.erase(it);
  }
  return done;
}

// Answers the revocations whose records in flight the store has now answered.
void answer_settled_revocations(consumer_state& st) {
  auto ready = [&](pending_revocation& r) {
    if (!settled(st, r.leaving))
      return false;
    r.answer.deliver(let_go(st, r.leaving));
    return true;
  };
  st.revocations.erase(std::remove_if(st.revocations.begin(), st.revocations.end(), ready),
                       st.revocations.end());
}

// The store has answered for (or we gave up on) this record: its position may now be committed.
void finish(self_pointer self, const position& p) {
  auto& st = self->state;
  auto it = st.partitions.find(consumer_state::partition_ref{p.topic, p.partition});
  if (it == st.partitions.end())
    return; // revoked meanwhile: the new owner reads it again, and the store keeps it once
  if (it->second.finish(p.offset) && !st.commit_scheduled) {
    st.commit_scheduled = true;
    self->delayed_send(self, consumer_state::commit_interval, commit_atom::value);
  }
  if (!st.revocations.empty())
    answer_settled_revocations(st);
}

std::string describe(const std::vector<validation_error>& errors) {
  std::string text;
  for (auto& e : errors)
    text += (text.empty() ? "" : "; ") + e.message;
  return text;
}

// Unreadable (null, not JSON, not an object) or readable but not a valid event.
bool is_malformed(const std::vector<validation_error>& errors) {
  return errors.size() == 1 && errors.front().field == "body";
}

// The event in a record, or nothing when the record is skipped (and so already done).
std::optional<event> accept(self_pointer self, const kafka::record& r, const position& at) {
  auto& m = metrics::global();
  m.events_consumed.inc();
  self->state.progress(r.topic, r.partition).track(r.offset);
  try {
    if (!r.has_value) {
      m.events_malformed.inc();
      skip(at, "null value");
    } else if (auto parsed = parse_event_message(r.value); !parsed.ok()) {
      (is_malformed(parsed.errors) ? m.events_malformed : m.events_invalid).inc();
      skip(at, describe(parsed.errors));
    } else {
      return std::move(parsed.value);
    }
  } catch (const std::exception& ex) {
    skip(at, std::string{"processing failed: "} + ex.what());
  }
  finish(self, at);
  return std::nullopt;
}

void report(const event& e, write_status status, const position& at) {
  auto& m = metrics::global();
  if (status == write_status::added) {
    m.events_processed.inc();
    log::info("Processed event", {{"eventId", e.event_id}, {"userId", e.user_id},
                                  {"eventType", e.event_type}, {"topic", at.topic},
                                  {"partition", at.partition}, {"offset", at.offset}});
  } else {
    m.events_duplicate.inc();
    log::info("Duplicate event ignored", {{"eventId", e.event_id}, {"topic", at.topic},
                                          {"partition", at.partition}, {"offset", at.offset}});
  }
}

// The database refused this event for its data: it is skipped, never retried, so that it cannot
// hold up its partition.
void store_rejected(const event&, const position& at, const std::string& reason) {
  metrics::global().events_rejected.inc();
  skip(at, "store-rejected: " + reason);
}

void settle(self_pointer self, const consumer_state::write& w,
            const std::vector<write_outcome>& outcomes) {
  auto& events = *w.events;
  auto& origins = *w.origins;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i >= outcomes.size())
      skip(origins[i], "store gave no outcome");
    else if (outcomes[i].status == write_status::rejected)
      store_rejected(events[i], origins[i], outcomes[i].reason);
    else
      report(events[i], outcomes[i].status, origins[i]);
    finish(self, origins[i]);
  }
}

void give_up(self_pointer self, const consumer_state::write& w, const caf::error& err) {
  for (auto& at : *w.origins) {
    skip(at, "store failed: " + self->system().render(err));
    finish(self, at);
  }
}

void send_write(self_pointer self, uint64_t id, consumer_state::write w);

// The store could not reach its database: hold the write for a retry. The first such failure of
// an outage pauses consumption, so that no more records pile up here, and starts the retries.
void hold(self_pointer self, uint64_t id, consumer_state::write w, const caf::error& err) {
  auto& st = self->state;
  st.waiting.emplace(id, std::move(w));
  if (st.store_down)
    return; // a retry is scheduled or on its way already
  st.store_down = true;
  st.backoff = consumer_state::first_backoff;
  log::warn("Store unavailable: consumption paused, no offsets committed past what is stored",
            {{"error", self->system().render(err)}, {"retryInMs", int64_t{st.backoff.count()}}});
  st.client->pause();
  self->delayed_send(self, st.backoff, retry_atom::value);
}

// The store took a write again: resume, and send it everything that waited, in order.
void recover(self_pointer self) {
  auto& st = self->state;
  st.store_down = false;
  auto waiting = std::exchange(st.waiting, {});
  log::info("Store available again: consumption resumed",
            {{"waitingBatches", static_cast<int64_t>(waiting.size())}});
  st.client->resume();
  for (auto& [id, w] : waiting)
    send_write(self, id, std::move(w));
}

void send_write(self_pointer self, uint64_t id, consumer_state::write w) {
  auto& st = self->state;
  if (st.store_down) {
    st.waiting.emplace(id, std::move(w));
    return;
  }
  self->request(st.store, caf::infinite, add_if_new_atom::value, w.events, w.origins)
    .then([=](const std::vector<write_outcome>& outcomes) { settle(self, w, outcomes); },
          [=](caf::error& err) {
            if (err == store_error::unavailable)
              hold(self, id, w, err);
            else
              give_up(self, w, err);
          });
}

// Sends the oldest waiting write alone: the others follow once it is stored.
void retry(self_pointer self) {
  auto& st = self->state;
  if (st.waiting.empty())
    return recover(self);
  auto oldest = st.waiting.begin();
  auto id = oldest->first;
  auto w = std::move(oldest->second);
  st.waiting.erase(oldest);
  self->request(st.store, caf::infinite, add_if_new_atom::value, w.events, w.origins)
    .then(
      [=](const std::vector<write_outcome>& outcomes) {
        settle(self, w, outcomes);
        recover(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        if (err != store_error::unavailable) {
          give_up(self, w, err);
          self->send(self, retry_atom::value); // the next one at once
          return;
        }
        st.waiting.emplace(id, w);
        st.backoff = std::min(st.backoff * 2, consumer_state::max_backoff);
        self->delayed_send(self, st.backoff, retry_atom::value);
      });
}

// Validates a polled batch and hands its valid events to the store in one request.
void process(self_pointer self, const std::vector<kafka::record>& records) {
  std::vector<event> events;
  std::vector<position> where;
  events.reserve(records.size());
  where.reserve(records.size());
  for (auto& r : records) {
    position at{r.topic, r.partition, r.offset};
    if (auto e = accept(self, r, at)) {
      events.push_back(std::move(*e));
      where.push_back(std::move(at));
    }
  }
  if (events.empty())
    return;
  // The store's request and its handlers share the events and positions, none copies them.
  consumer_state::write w{std::make_shared<const std::vector<event>>(std::move(events)),
                          std::make_shared<const std::vector<position>>(std::move(where))};
  send_write(self, self->state.next_write++, std::move(w));
}

} // namespace

consumer_actor_impl::behavior_type
consumer(self_pointer self, store_actor store, std::shared_ptr<kafka::consumer_client> client) {
  self->state.store = std::move(store);
  self->state.client = std::move(client);
  return {
    [=](records_atom, const std::vector<kafka::record>& batch) {
      process(self, batch);
      return ok_atom::value;
    },
    [=](commit_atom) {
      auto& st = self->state;
      st.commit_scheduled = false;
      std::vector<kafka::partition_offset> offsets;
      for (auto& [key, progress] : st.partitions) {
        if (progress.has_uncommitted()) {
          offsets.push_back({key.first, key.second, progress.done_upto});
          progress.committed = progress.done_upto;
        }
      }
      if (!offsets.empty())
        st.client->commit(offsets);
    },
    [=](retry_atom) { retry(self); },
    [=](revoke_atom, std::vector<kafka::partition_offset>& leaving)
      -> caf::result<std::vector<kafka::partition_offset>> {
      auto& st = self->state;
      if (settled(st, leaving))
        return let_go(st, leaving);
      auto id = st.next_revocation++;
      auto answer = self->make_response_promise<std::vector<kafka::partition_offset>>();
      st.revocations.push_back({id, std::move(leaving), answer});
      self->delayed_send(self, consumer_state::revoke_wait, revoke_due_atom::value, id);
      return answer;
    },
    [=](revoke_due_atom, uint64_t id) {
      auto& st = self->state;
      auto it = std::find_if(st.revocations.begin(), st.revocations.end(),
                             [&](const pending_revocation& r) { return r.id == id; });
      if (it == st.revocations.end())
        return; // answered already
      log::warn("Partitions revoked before the store answered for all their records: the next "
                "owner reads those again",
                {{"waitedMs", int64_t{consumer_state::revoke_wait.count()}}});
      it->answer.deliver(let_go(st, it->leaving));
      st.revocations.erase(it);
    },
  };
}

void consumer_bridge::on_records(std::vector<kafka::record> batch) {
  // Waits for the actor to take the batch. Unpaced, this thread read a backlog into the actor's
  // mailbox as fast as the broker sent it, and the memory that held it stayed with the process.
  if (!hand_)
    hand_.emplace(sys_);
  (*hand_)->request(actor_, caf::infinite, records_atom::value, std::move(batch))
    .receive([](ok_atom) {},
             [&](caf::error& err) {
               log::warn("Consumer did not take a batch", {{"error", sys_.render(err)}});
             });
}

std::vector<kafka::partition_offset>
consumer_bridge::on_revoked(const std::vector<kafka::partition_offset>& partitions) {
  std::vector<kafka::partition_offset> done;
  caf::scoped_actor self{sys_};
  self->request(actor_, std::chrono::seconds{5}, revoke_atom::value, partitions)
    .receive([&](std::vector<kafka::partition_offset>& result) { done = std::move(result); },
             [&](caf::error& err) {
               log::warn("Consumer did not answer the revocation",
                         {{"error", sys_.render(err)}});
             });
  return done;
}

} // namespace uas
