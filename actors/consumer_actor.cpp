#include "actors/consumer_actor.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <variant>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/trace_context.hpp"

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

std::chrono::milliseconds dead_letter_route::delay_before(int retry) const {
  auto delay = backoff;
  for (int i = 1; i < retry && delay < max_backoff; ++i)
    delay *= 2;
  return std::min(delay, max_backoff);
}

namespace {

using self_pointer = consumer_actor_impl::stateful_pointer<consumer_state>;

// Where a record sits: what every consumer log line names.
using position = kafka::partition_offset;

// The fields that place a line about one record, and its trace when it has one.
log::field_list where_fields(const position& p, const std::string& trace_id) {
  log::field_list fs{{"topic", p.topic}, {"partition", p.partition}, {"offset", p.offset}};
  if (!trace_id.empty())
    fs.push_back({"traceId", trace_id});
  return fs;
}

void forget_dead_letters(consumer_state& st, const kafka::partition_offset& leaving);

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
    forget_dead_letters(st, p);
  }
  return done;
}

// The leaving partitions' events gathered for the next write stay unwritten: their next owner
// reads them from where the positions stored with this consumer's writes end, so a revocation
// waits for the one write at the store and no more. In each such partition what was read from
// the first of them on is left too, so that nothing done later moves the position past them.
void leave_unwritten(consumer_state& st, const std::vector<kafka::partition_offset>& leaving) {
  auto is_leaving = [&](const kafka::partition_offset& at) {
    return std::any_of(leaving.begin(), leaving.end(), [&](const kafka::partition_offset& p) {
      return p.topic == at.topic && p.partition == at.partition;
    });
  };
  auto& next = st.next;
  if (std::none_of(next.origins.begin(), next.origins.end(), is_leaving))
    return;
  std::map<consumer_state::partition_key, int64_t> first_left;
  consumer_state::gathered kept;
  for (size_t i = 0; i < next.events.size(); ++i) {
    auto& at = next.origins[i];
    if (!is_leaving(at)) {
      kept.events.push_back(std::move(next.events[i]));
      kept.origins.push_back(std::move(at));
      kept.records.push_back(std::move(next.records[i]));
      continue;
    }
    auto first = first_left.emplace(consumer_state::partition_key{at.topic, at.partition}, at.offset);
    first.first->second = std::min(first.first->second, at.offset);
  }
  next = std::move(kept);
  for (auto& [key, offset] : first_left) {
    auto it = st.partitions.find(key);
    if (it == st.partitions.end())
      continue;
    auto& pending = it->second.pending;
    while (!pending.empty() && pending.back().first >= offset)
      pending.pop_back();
  }
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

// The line for a message the consumer did not store; `dead_letter_topic` names where it went.
void skip(const position& p, std::string_view reason, const std::string& error,
          const std::string& trace_id, const std::string& dead_letter_topic = {}) {
  log::field_list fs{{"reason", reason}};
  auto where = where_fields(p, trace_id);
  fs.insert(fs.end(), where.begin(), where.end());
  fs.push_back({"error", error});
  if (!dead_letter_topic.empty())
    fs.push_back({"deadLetterTopic", dead_letter_topic});
  log::write(log::level::warn, "Skipped message", fs);
}

// The store has answered for this record, or its dead letter is acknowledged (or refused for
// good): its position may now be committed.
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

// Why the consumer cannot store a record.
struct rejection {
  dead_letter_reason reason;
  std::string error;
};

// The event a record holds, or why it cannot be stored. Nothing but the value, the schema-version
// and traceparent headers count: the key is the producer's business.
std::variant<event, rejection> read_record(const kafka::record& r) {
  using reason = dead_letter_reason;
  // The version says how to read the rest, so it is looked at first.
  if (auto why = unknown_schema(r.headers); !why.empty())
    return rejection{reason::unknown_schema, std::move(why)};
  if (!r.has_value)
    return rejection{reason::malformed, "value is null"};
  if (r.value.size() > max_message_value_bytes)
    return rejection{reason::too_large,
                     "value of " + std::to_string(r.value.size()) + " bytes is larger than any event ("
                       + std::to_string(max_message_value_bytes) + " bytes at most)"};
  auto parsed = parse_event_message(r.value);
  if (!parsed.ok())
    return rejection{is_malformed(parsed.errors) ? reason::malformed : reason::invalid,
                     describe(parsed.errors)};
  parsed.value.traceparent = traceparent_of(r.headers);
  return std::move(parsed.value);
}

// -- dead letters ---------------------------------------------------------------

// Sends a record the consumer cannot store to the dead-letter topic; its position waits for the
// broker's acknowledgement. Without a dead-letter topic it is skipped at once.
void reject(self_pointer self, const kafka::record& r, rejection why) {
  auto& st = self->state;
  auto& m = metrics::global();
  if (why.reason == dead_letter_reason::malformed)
    m.events_malformed.inc();
  else if (why.reason == dead_letter_reason::invalid)
    m.events_invalid.inc();
  position at{r.topic, r.partition, r.offset};
  auto trace_id = trace_id_of(traceparent_of(r.headers));
  if (!st.dead_letters.client) {
    skip(at, name_of(why.reason), why.error, trace_id);
    finish(self, at);
    return;
  }
  auto id = st.next_dead_letter_id++;
  auto message = dead_letter(r, why.reason, why.error, st.dead_letters.consumer_group);
  auto& pending = st.dead_letters_in_flight
                    .emplace(id, pending_dead_letter{std::move(at), why.reason, std::move(why.error),
                                                     std::move(trace_id), std::move(message)})
                    .first->second;
  st.dead_letters.client->produce(pending.message, id);
}

// Acknowledged: the original is done. Refused for good: said loudly, counted, and done too.
// Otherwise tried again after a backoff, the position held meanwhile.
void settle_dead_letter(self_pointer self, const kafka::delivery& report) {
  auto& st = self->state;
  auto it = st.dead_letters_in_flight.find(report.id);
  if (it == st.dead_letters_in_flight.end())
    return; // its partition was revoked: the new owner reads the original again
  auto& d = it->second;
  auto& m = metrics::global();
  auto reason = name_of(d.reason);
  if (report.error.empty()) {
    m.events_dead_lettered.inc({reason});
    skip(d.at, reason, d.error, d.trace_id, st.dead_letters.topic);
  } else if (report.permanent) {
    m.events_dead_letter_failed.inc();
    auto fs = where_fields(d.at, d.trace_id);
    fs.insert(fs.begin(), {"reason", reason});
    fs.push_back({"deadLetterTopic", st.dead_letters.topic});
    fs.push_back({"error", report.error});
    log::write(log::level::error, "Dead letter refused, message left without a copy", fs);
  } else {
    auto delay = st.dead_letters.delay_before(d.attempt);
    auto fs = where_fields(d.at, d.trace_id);
    fs.push_back({"deadLetterTopic", st.dead_letters.topic});
    fs.push_back({"attempt", d.attempt});
    fs.push_back({"error", report.error});
    log::write(log::level::warn, "Dead letter not delivered", fs,
               "; retrying in " + std::to_string(delay.count()) + " ms");
    self->delayed_send(self, delay, dead_letter_retry_atom::value, report.id);
    return;
  }
  // Erased before finish: a revocation that finish lets go drops the partition's dead letters.
  auto at = std::move(d.at);
  st.dead_letters_in_flight.erase(it);
  finish(self, at);
}

// Partitions leaving take their dead letters with them: the new owner reads the originals again.
void forget_dead_letters(consumer_state& st, const kafka::partition_offset& leaving) {
  for (auto it = st.dead_letters_in_flight.begin(); it != st.dead_letters_in_flight.end();) {
    auto& at = it->second.at;
    if (at.topic == leaving.topic && at.partition == leaving.partition)
      it = st.dead_letters_in_flight.erase(it);
    else
      ++it;
  }
}

// -- events -------------------------------------------------------------------------

// The event in a record, or nothing when the record is rejected (and so handled already).
std::optional<event> accept(self_pointer self, const kafka::record& r) {
  metrics::global().events_consumed.inc();
  self->state.progress(r.topic, r.partition).track(r.offset);
  std::variant<event, rejection> read;
  try {
    read = read_record(r);
  } catch (const std::exception& ex) {
    read = rejection{dead_letter_reason::malformed, std::string{"processing failed: "} + ex.what()};
  }
  if (auto* e = std::get_if<event>(&read))
    return std::move(*e);
  reject(self, r, std::move(std::get<rejection>(read)));
  return std::nullopt;
}

void report(const event& e, write_status status, const position& at) {
  bool added = status == write_status::added;
  (added ? metrics::global().events_processed : metrics::global().events_duplicate).inc();
  if (!log::enabled(log::level::info))
    return; // one line per event: its fields cost more than storing it in memory does
  auto trace_id = trace_id_of(e.traceparent); // outlives the fields, which only view it
  auto where = where_fields(at, trace_id);
  log::field_list fs;
  if (added)
    fs = {{"eventId", e.event_id}, {"userId", e.user_id}, {"eventType", e.event_type}};
  else
    fs = {{"eventId", e.event_id}};
  fs.insert(fs.end(), where.begin(), where.end());
  log::write(log::level::info, added ? "Processed event" : "Duplicate event ignored", fs);
}

// The database refused this event for its data: it goes to the dead-letter topic like any other
// message the consumer cannot store, and is never retried, so that it cannot hold up its
// partition.
void store_rejected(self_pointer self, const kafka::record& r, const std::string& reason) {
  metrics::global().events_rejected.inc();
  reject(self, r, rejection{dead_letter_reason::store_rejected, "the store refused it: " + reason});
}

void settle(self_pointer self, const consumer_state::write& w,
            const std::vector<write_outcome>& outcomes) {
  auto& events = *w.events;
  auto& origins = *w.origins;
  for (size_t i = 0; i < events.size(); ++i) {
    auto trace_id = trace_id_of(events[i].traceparent);
    if (i < outcomes.size() && outcomes[i].status == write_status::rejected) {
      store_rejected(self, (*w.records)[i], outcomes[i].reason);
      continue; // done once its dead letter is acknowledged
    }
    if (i >= outcomes.size())
      skip(origins[i], "store-failed", "store gave no outcome", trace_id);
    else
      report(events[i], outcomes[i].status, origins[i]);
    finish(self, origins[i]);
  }
}

void give_up(self_pointer self, const consumer_state::write& w, const caf::error& err) {
  auto why = "store failed: " + self->system().render(err);
  for (size_t i = 0; i < w.events->size(); ++i) {
    skip((*w.origins)[i], "store-failed", why, trace_id_of((*w.events)[i].traceparent));
    finish(self, (*w.origins)[i]);
  }
}

void write_gathered(self_pointer self);

// The store has answered for the write in flight: it is reachable again if it was not.
void written(self_pointer self) {
  auto& st = self->state;
  st.writing = false;
  if (!st.store_down)
    return;
  st.store_down = false;
  log::info("Store available again: consumption resumed",
            {{"waitingEvents", static_cast<int64_t>(st.next.events.size())}});
  st.client->resume();
}

// The store could not reach its database: hold the write for a retry after a backoff. The first
// such failure of an outage pauses consumption, so that no more records pile up here.
void hold(self_pointer self, consumer_state::write w, const caf::error& err) {
  auto& st = self->state;
  st.held = std::move(w);
  if (st.store_down) {
    st.backoff = std::min(st.backoff * 2, consumer_state::max_backoff);
  } else {
    st.store_down = true;
    st.backoff = consumer_state::first_backoff;
    log::warn("Store unavailable: consumption paused, no offsets committed past what is stored",
              {{"error", self->system().render(err)}, {"retryInMs", int64_t{st.backoff.count()}}});
    st.client->pause();
  }
  // Consumption is paused: the polling thread may read on (the little still fetched) and serve
  // the group meanwhile.
  if (st.reader.pending())
    st.reader.deliver(ok_atom::value);
  self->delayed_send(self, st.backoff, retry_atom::value);
}

void send_write(self_pointer self, consumer_state::write w) {
  auto& st = self->state;
  st.writing = true;
  self->request(st.store, caf::infinite, add_if_new_atom::value, w.events, w.origins, w.resume)
    .then(
      [=](const std::vector<write_outcome>& outcomes) {
        written(self);
        settle(self, w, outcomes);
        write_gathered(self); // after settle: its dead letters bound the next write's positions
      },
      [=](caf::error& err) {
        if (err == store_error::unavailable) {
          hold(self, w, err); // still writing: what is read meanwhile waits behind it
          return;
        }
        written(self);
        give_up(self, w, err);
        write_gathered(self);
      });
}

// Where each partition of a write resumes once the write is stored: past its last event, but
// never past a record whose dead letter is still on its way (its next reader must dead-letter it
// again). Every other record before the write's is stored, or in the write the store has now.
std::vector<position> resume_after(const consumer_state& st, const std::vector<position>& where) {
  std::map<consumer_state::partition_key, int64_t> next;
  for (auto& p : where) {
    auto& n = next[{p.topic, p.partition}];
    n = std::max(n, p.offset + 1);
  }
  for (auto& [id, d] : st.dead_letters_in_flight)
    if (auto it = next.find({d.at.topic, d.at.partition}); it != next.end())
      it->second = std::min(it->second, d.at.offset);
  std::vector<position> resume;
  for (auto& [key, offset] : next)
    resume.push_back({key.first, key.second, offset});
  return resume;
}

// Sends the events gathered so far to the store in one write, unless a write is there already.
// Their records go along, for a dead letter should the store refuse one.
void write_gathered(self_pointer self) {
  auto& st = self->state;
  if (st.writing)
    return;
  if (st.reader.pending())
    st.reader.deliver(ok_atom::value); // the polling thread reads on, whatever is gathered
  if (st.next.events.empty())
    return;
  auto next = std::exchange(st.next, {});
  auto resume = resume_after(st, next.origins);
  // The store's request and its handlers share the events, positions and records, none copies
  // them.
  send_write(self, {std::make_shared<const std::vector<event>>(std::move(next.events)),
                    std::make_shared<const std::vector<position>>(std::move(next.origins)),
                    std::make_shared<const std::vector<kafka::record>>(std::move(next.records)),
                    std::make_shared<const std::vector<position>>(std::move(resume))});
}

// Validates a polled batch and gathers its valid events for the store.
void process(self_pointer self, std::vector<kafka::record>& records) {
  auto& next = self->state.next;
  for (auto& r : records) {
    if (auto e = accept(self, r)) {
      next.events.push_back(std::move(*e));
      next.origins.push_back({r.topic, r.partition, r.offset});
      next.records.push_back(std::move(r));
    }
  }
  write_gathered(self);
}

} // namespace

consumer_actor_impl::behavior_type
consumer(self_pointer self, store_actor store, std::shared_ptr<kafka::consumer_client> client,
         dead_letter_route dead_letters) {
  self->state.store = std::move(store);
  self->state.client = std::move(client);
  self->state.dead_letters = std::move(dead_letters);
  // Every reason's series from the start, at 0, so that a rate over it has a beginning.
  for (auto reason : dead_letter_reasons)
    metrics::global().events_dead_lettered.inc({name_of(reason)}, 0);
  if (auto& producer = self->state.dead_letters.client) {
    // Weak: the client lives in this actor's state and must not keep the actor alive in turn.
    caf::weak_actor_ptr weak = self->ctrl();
    producer->notify_deliveries([weak] {
      if (auto strong = weak.lock())
        caf::anon_send(caf::actor_cast<consumer_actor_impl>(strong),
                       dead_letter_reports_atom::value);
    });
  }
  return {
    [=](records_atom, std::vector<kafka::record>& batch) -> caf::result<ok_atom> {
      process(self, batch);
      auto& st = self->state;
      if (!st.writing || st.store_down || st.next.events.size() < consumer_state::max_gathered)
        return ok_atom::value;
      st.reader = self->make_response_promise<ok_atom>();
      return st.reader;
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
    [=](retry_atom) {
      auto& st = self->state;
      if (!st.held)
        return;
      auto w = std::move(*st.held);
      st.held.reset();
      send_write(self, std::move(w));
    },
    [=](revoke_atom, std::vector<kafka::partition_offset>& leaving, caf::timespan wait)
      -> caf::result<std::vector<kafka::partition_offset>> {
      auto& st = self->state;
      leave_unwritten(st, leaving);
      if (settled(st, leaving))
        return let_go(st, leaving);
      auto id = st.next_revocation++;
      auto answer = self->make_response_promise<std::vector<kafka::partition_offset>>();
      st.revocations.push_back({id, std::move(leaving), wait, answer});
      self->delayed_send(self, wait, revoke_due_atom::value, id);
      return answer;
    },
    [=](revoke_due_atom, uint64_t id) {
      auto& st = self->state;
      auto it = std::find_if(st.revocations.begin(), st.revocations.end(),
                             [&](const pending_revocation& r) { return r.id == id; });
      if (it == st.revocations.end())
        return; // answered already
      std::string waiting;
      for (auto& p : it->leaving)
        if (!settled(st, {p}))
          waiting += (waiting.empty() ? "" : ",") + std::to_string(p.partition);
      log::warn("Partitions revoked before the store answered for all their records: the next "
                "owner reads those again",
                {{"partitions", waiting},
                 {"waitedMs", int64_t{std::chrono::duration_cast<std::chrono::milliseconds>(
                                        it->wait).count()}}});
      it->answer.deliver(let_go(st, it->leaving));
      st.revocations.erase(it);
    },
    [=](dead_letter_reports_atom) {
      for (auto& report : self->state.dead_letters.client->take_deliveries())
        settle_dead_letter(self, report);
    },
    [=](dead_letter_retry_atom, uint64_t id) {
      auto& st = self->state;
      auto it = st.dead_letters_in_flight.find(id);
      if (it == st.dead_letters_in_flight.end())
        return; // its partition was revoked meanwhile
      ++it->second.attempt;
      st.dead_letters.client->produce(it->second.message, id);
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

namespace {

// Asks `whom`, from a polling thread (which may block), for partitions' positions, waiting at
// most `limit`. Without an answer: the warning `unanswered`, and no positions.
template <class Handle, class... Ts>
std::vector<kafka::partition_offset> ask_positions(caf::actor_system& sys, const Handle& whom,
                                                   caf::timespan limit, const char* unanswered,
                                                   const Ts&... request) {
  std::vector<kafka::partition_offset> positions;
  caf::scoped_actor self{sys};
  self->request(whom, limit, request...)
    .receive([&](std::vector<kafka::partition_offset>& answer) { positions = std::move(answer); },
             [&](caf::error& err) { log::warn(unanswered, {{"error", sys.render(err)}}); });
  return positions;
}

} // namespace

std::vector<kafka::partition_offset>
consumer_bridge::on_assigned(const std::vector<kafka::partition_offset>& partitions) {
  return ask_positions(sys_, store_, std::chrono::seconds{5},
                       "Read positions unknown: the assigned partitions start from the group's "
                       "commits",
                       positions_atom::value, partitions);
}

std::vector<kafka::partition_offset>
consumer_bridge::on_revoked(const std::vector<kafka::partition_offset>& partitions) {
  caf::timespan wait = consumer_state::revoke_wait;
  if (auto deadline = close_deadline_.load(); deadline != std::chrono::steady_clock::time_point{})
    wait = std::max(caf::timespan{0}, deadline - std::chrono::steady_clock::now());
  // The actor answers when the wait is over at the latest; the rest is for the answer's way.
  return ask_positions(sys_, actor_, wait + std::chrono::seconds{2},
                       "Consumer did not answer the revocation", revoke_atom::value, partitions,
                       wait);
}

} // namespace uas
