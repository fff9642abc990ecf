#include "core/memory_store.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace uas {

namespace {

// Where to_json puts the fields, around the escaped values: {"eventId":"<id>","userId":"<user>",
// "eventType":"<type>", ...
constexpr size_t id_at = sizeof(R"({"eventId":")") - 1;
constexpr size_t user_gap = sizeof(R"(","userId":")") - 1;
constexpr size_t type_gap = sizeof(R"(","eventType":")") - 1;

// Positions wrap at 2^31 inside a slot's tag; the bound on stored events keeps them apart.
constexpr uint32_t position_mask = 0x7fffffff;

uint32_t hash_of(std::string_view id) {
  return static_cast<uint32_t>(std::hash<std::string_view>{}(id));
}

int64_t millis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

} // namespace

std::string_view memory_store::stored::id() const {
  return text.substr(id_at, id_size);
}

std::string_view memory_store::stored::user() const {
  return text.substr(id_at + id_size + user_gap, user_size);
}

std::string_view memory_store::stored::type() const {
  return text.substr(id_at + id_size + user_gap + user_size + type_gap, type_size);
}

memory_store::memory_store(uint64_t max_events, clock now)
  : max_events_{std::clamp<uint64_t>(max_events, 1, position_mask / 2)}, now_{std::move(now)} {
}

uint32_t memory_store::tag_of(uint64_t position) const {
  return static_cast<uint32_t>(position & position_mask) + 1;
}

size_t memory_store::index_of(uint32_t tag) const {
  return (tag - 1 - static_cast<uint32_t>(front_position_ & position_mask)) & position_mask;
}

size_t memory_store::slot_of(std::string_view id, uint32_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    auto& s = slots_[i];
    if (s.tag == 0 || (s.hash == hash && events_[index_of(s.tag)].id() == id))
      return i;
  }
}

void memory_store::free_slot(size_t i) {
  // Backward shift: the entries after the freed slot that probed past it move up, so that every
  // lookup still finds its entry before the first empty slot, without tombstones.
  size_t mask = slots_.size() - 1;
  for (size_t j = (i + 1) & mask; slots_[j].tag != 0; j = (j + 1) & mask) {
    size_t home = slots_[j].hash & mask;
    // Moves unless its home lies cyclically in (i, j].
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = slot{};
}

void memory_store::grow() {
  // Doubling stalls the store's thread, and the consumer with it: map the new table's pages at
  // once (2 MB at about 92,000 events) rather than page by page as its zeros are written.
  auto size = slots_.size() * 2;
  std::vector<slot> bigger;
  bigger.reserve(size);
  prefault(reinterpret_cast<char*>(bigger.data()), size * sizeof(slot));
  bigger.resize(size);
  size_t mask = bigger.size() - 1;
  for (auto& s : slots_) {
    if (s.tag == 0)
      continue;
    size_t i = s.hash & mask;
    while (bigger[i].tag != 0)
      i = (i + 1) & mask;
    bigger[i] = s;
  }
  slots_.swap(bigger);
}

void memory_store::keep(std::string_view text, uint64_t seq, int64_t stored_ms, uint32_t id_size,
                        uint32_t user_size, uint32_t type_size) {
  // At most 70 % full, so that probes stay short.
  if ((events_.size() + 1) * 10 > slots_.size() * 7)
    grow();
  auto kept = texts_.keep(text, ",");
  events_.push_back({kept, seq, stored_ms, id_size, user_size, type_size});
  auto id = events_.back().id();
  auto hash = hash_of(id);
  slots_[slot_of(id, hash)] = {tag_of(front_position_ + events_.size() - 1), hash};
}

void memory_store::drop_oldest() {
  auto id = events_.front().id();
  free_slot(slot_of(id, hash_of(id)));
  events_.pop_front();
  ++front_position_;
  if (events_.empty())
    texts_.clear();
  else
    texts_.release_before(events_.front().text.data());
}

void memory_store::count_stored() const {
  metrics::global().store_events.set(static_cast<int64_t>(events_.size()));
}

write_status memory_store::add(const event& e) {
  auto id = json_escaped(e.event_id);
  if (slots_[slot_of(id, hash_of(id))].tag != 0)
    return write_status::duplicate;
  if (events_.size() >= max_events_) {
    if (!said_full_) {
      said_full_ = true;
      log::warn("Memory store full: the oldest events leave the store, and their eventIds "
                "deduplication, as new ones come",
                {{"maxEvents", static_cast<int64_t>(max_events_)},
                 {"setting", "STORE_MEMORY_MAX_EVENTS"}});
    }
    drop_oldest();
    metrics::global().store_events_dropped.inc();
  }
  auto text = to_json(e);
  auto user_size = json_escaped(e.user_id).size();
  auto type_size = json_escaped(e.event_type).size();
  // The fields must sit where stored::id() and the others look for them.
  if (text.compare(id_at, id.size(), id) != 0
      || text.compare(id_at + id.size(), user_gap, R"(","userId":")") != 0)
    throw std::logic_error{"to_json no longer starts with eventId, userId, eventType"};
  keep(text, next_seq_++, millis(now_()), static_cast<uint32_t>(id.size()),
       static_cast<uint32_t>(user_size), static_cast<uint32_t>(type_size));
  return write_status::added;
}

caf::expected<std::vector<write_outcome>>
memory_store::add_if_new(const std::vector<event>& batch,
                         const std::vector<kafka::partition_offset>&,
                         const std::vector<kafka::partition_offset>&) {
  std::vector<write_outcome> outcomes;
  outcomes.reserve(batch.size());
  for (auto& e : batch)
    outcomes.push_back({add(e), {}});
  count_stored();
  return outcomes;
}

caf::expected<event_page> memory_store::read(const event_query& query) {
  event_page page;
  if (query.everything()) {
    // Every event: the arena as it is, shared rather than copied.
    page.json = shared_text{"["};
    if (!events_.empty())
      page.json.append(texts_.contents_from(events_.front().text.data()));
    page.json.append("]");
    return page;
  }
  auto user = json_escaped(query.user_id);
  auto type = json_escaped(query.event_type);
  auto first = std::partition_point(events_.begin(), events_.end(),
                                    [&](const stored& s) { return s.seq <= query.after; });
  std::string array = "[";
  uint32_t taken = 0;
  for (auto it = first; it != events_.end(); ++it) {
    if ((!user.empty() && it->user() != user) || (!type.empty() && it->type() != type))
      continue;
    if (query.limit != 0 && taken == query.limit) {
      page.next = std::prev(it)->seq; // not necessarily the previous match: any cursor between works
      break;
    }
    if (taken++ > 0)
      array += ',';
    array += it->text;
  }
  array += ']';
  page.json = shared_text::of(std::move(array));
  return page;
}

caf::expected<std::string> memory_store::find(const std::string& event_id) {
  auto id = json_escaped(event_id);
  auto& s = slots_[slot_of(id, hash_of(id))];
  if (s.tag == 0)
    return make_error(store_error::not_found);
  return std::string{events_[index_of(s.tag)].text};
}

caf::expected<uint64_t> memory_store::erase_user(const std::string& user_id) {
  auto user = json_escaped(user_id);
  auto matches = [&](const stored& s) { return s.user() == user; };
  auto erased = static_cast<uint64_t>(std::count_if(events_.begin(), events_.end(), matches));
  if (erased == 0)
    return erased;
  // Rare and whole: the others are kept again, in order, into fresh memory, so that the arena
  // still reads as the array of every event.
  auto old_events = std::move(events_);
  auto old_texts = std::move(texts_);
  events_ = {};
  texts_ = {};
  slots_.assign(initial_slots, slot{});
  for (auto& s : old_events)
    if (!matches(s))
      keep(s.text, s.seq, s.stored_ms, s.id_size, s.user_size, s.type_size);
  count_stored();
  return erased;
}

caf::expected<uint64_t> memory_store::expire(std::chrono::system_clock::time_point cutoff,
                                             uint64_t at_most) {
  uint64_t expired = 0;
  // Stored in time order, so the old ones are at the front.
  while (expired < at_most && !events_.empty() && events_.front().stored_ms < millis(cutoff)) {
    drop_oldest();
    ++expired;
  }
  count_stored();
  return expired;
}

} // namespace uas
