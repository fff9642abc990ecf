#include "kafka/rdkafka_consumer.hpp"

#include <algorithm>
#include <malloc.h>
#include <pthread.h>
#include <stdexcept>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

namespace {

// A poll hands over at most this many records at once: large enough to amortize the message to
// the actor, small enough to keep latency low.
constexpr int max_batch = 1000;

rd_kafka_topic_partition_list_t* to_list(const std::vector<partition_offset>& offsets) {
  auto* list = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  for (auto& p : offsets)
    rd_kafka_topic_partition_list_add(list, p.topic.c_str(), p.partition)->offset = p.offset;
  return list;
}

std::vector<partition_offset> from_list(const rd_kafka_topic_partition_list_t* list) {
  std::vector<partition_offset> result;
  for (int i = 0; i < list->cnt; ++i)
    result.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  return result;
}

void check(rd_kafka_error_t* error) {
  if (error) {
    log::warn("Kafka assignment failed", {{"error", rd_kafka_error_string(error)}});
    rd_kafka_error_destroy(error);
  }
}

// "0,1,2": the partitions of a rebalance, in order, for its log line.
std::string numbers(const rd_kafka_topic_partition_list_t* list) {
  std::set<int32_t> sorted;
  for (int i = 0; i < list->cnt; ++i)
    sorted.insert(list->elems[i].partition);
  std::string text;
  for (auto p : sorted)
    text += (text.empty() ? "" : ",") + std::to_string(p);
  return text;
}

// How many partitions `topic` has, as the brokers say; 0 when they do not answer in time.
int partition_count(rd_kafka_t* client, const std::string& topic) {
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client, topic.c_str(), nullptr);
  const struct rd_kafka_metadata* metadata = nullptr;
  int count = 0;
  if (rd_kafka_metadata(client, 0, handle, &metadata, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR
      && metadata->topic_cnt == 1)
    count = metadata->topics[0].partition_cnt;
  if (metadata)
    rd_kafka_metadata_destroy(metadata);
  rd_kafka_topic_destroy(handle);
  return count;
}

// A message's headers, in order, null values kept apart from empty ones.
void read_headers(const rd_kafka_message_t* msg, headers& out) {
  rd_kafka_headers_t* hs = nullptr;
  if (rd_kafka_message_headers(msg, &hs) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return; // none
  const char* name;
  const void* value;
  size_t size;
  for (size_t i = 0; rd_kafka_header_get_all(hs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    if (value)
      out.push_back({name, std::string{static_cast<const char*>(value), size}});
    else
      out.push_back({name, {}, true});
  }
}

} // namespace

rdkafka_consumer::rdkafka_consumer(const config& cfg, const std::string& bootstrap)
  : topic_{cfg.topic}, group_{cfg.consumer_group}, memory_store_{cfg.memory_store()} {
  rd_kafka_conf_t* conf = make_conf(consumer_settings(cfg, bootstrap));
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, &rdkafka_consumer::on_commit);
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<rdkafka_consumer*>(opaque)->on_statistics(parse_statistics(json, len));
    return 0; // librdkafka frees the JSON
  });
  client_ = make_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(client_);
}

rdkafka_consumer::~rdkafka_consumer() {
  stop();
  rd_kafka_destroy(client_);
}

void rdkafka_consumer::start(consumer_listener& listener) {
  listener_ = &listener;
  auto* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic_.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(client_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err)
    throw std::runtime_error{std::string{"cannot subscribe to "} + topic_ + ": "
                             + rd_kafka_err2str(err)};
  polling_ = true;
  poller_ = std::thread{[this] { poll_loop(); }};
}

void rdkafka_consumer::stop() {
  if (!poller_.joinable())
    return;
  polling_ = false;
  poller_.join();
}

void rdkafka_consumer::commit(const std::vector<partition_offset>& offsets) {
  if (offsets.empty())
    return;
  auto* list = to_list(offsets);
  // Stored positions are committed by librdkafka (settings.cpp). A partition no longer assigned
  // refuses its position, as it should: its next owner reads from the last commit.
  if (auto err = rd_kafka_offsets_store(client_, list))
    log::debug("Offsets not stored", {{"error", rd_kafka_err2str(err)}});
  rd_kafka_topic_partition_list_destroy(list);
}

void rdkafka_consumer::pause() {
  paused_ = true;
  set_paused(true);
}

void rdkafka_consumer::resume() {
  paused_ = false;
  set_paused(false);
}

void rdkafka_consumer::set_paused(bool paused) {
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (auto err = rd_kafka_assignment(client_, &assigned)) {
    log::warn("Cannot read the consumer's assignment", {{"error", rd_kafka_err2str(err)}});
    return;
  }
  if (assigned->cnt > 0) {
    auto err = paused ? rd_kafka_pause_partitions(client_, assigned)
                      : rd_kafka_resume_partitions(client_, assigned);
    if (err)
      log::warn(paused ? "Pausing the consumer failed" : "Resuming the consumer failed",
                {{"error", rd_kafka_err2str(err)}});
  }
  rd_kafka_topic_partition_list_destroy(assigned);
}

void rdkafka_consumer::poll_loop() {
  pthread_setname_np(pthread_self(), "kafka-consumer"); // for top -H, perf and gdb
  size_t since_trim = 0; // records taken since memory was last given back
  while (polling_.load(std::memory_order_relaxed)) {
    // Wait for the first record, then take whatever else is already fetched.
    for (int timeout_ms = 100; batch_.size() < max_batch; timeout_ms = 0) {
      rd_kafka_message_t* msg = rd_kafka_consumer_poll(client_, timeout_ms);
      if (!msg)
        break;
      if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          log::warn("Kafka consumer error", {{"error", rd_kafka_message_errstr(msg)}});
      } else {
        record r;
        r.topic = rd_kafka_topic_name(msg->rkt);
        r.partition = msg->partition;
        r.offset = msg->offset;
        r.has_value = msg->payload != nullptr;
        if (r.has_value)
          r.value.assign(static_cast<const char*>(msg->payload), msg->len);
        r.has_key = msg->key != nullptr;
        if (r.has_key)
          r.key.assign(static_cast<const char*>(msg->key), msg->key_len);
        read_headers(msg, r.headers);
        batch_.push_back(std::move(r));
      }
      rd_kafka_message_destroy(msg);
    }
    if (!batch_.empty()) {
      since_trim += batch_.size();
      hand_over();
    } else if (since_trim >= trim_after_records) {
      // The topic went quiet after a burst. The memory that carried it (prefetched fetches,
      // batches in flight between actors) is free but glibc keeps it in its arenas: after a
      // drain of 100,000 events that was about 130 bytes per event, a third of what the stored
      // events themselves take. Idle, this thread can afford the few milliseconds a trim costs.
      malloc_trim(0);
      since_trim = 0;
    }
  }
  // Closing revokes the partitions (committing what is done through on_rebalance) and leaves
  // the group.
  rd_kafka_consumer_close(client_);
  listener_->on_closed();
}

void rdkafka_consumer::hand_over() {
  listener_->on_records(std::move(batch_));
  batch_.clear();
}

void rdkafka_consumer::on_commit(rd_kafka_t*, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* self = static_cast<rdkafka_consumer*>(opaque);
  for (int i = 0; offsets && i < offsets->cnt; ++i)
    if (!offsets->elems[i].err && offsets->elems[i].offset >= 0
        && self->topic_ == offsets->elems[i].topic)
      self->acknowledged_[offsets->elems[i].partition] = offsets->elems[i].offset;
  // While the group rebalances the broker may refuse commits; the positions stay stored and the
  // next automatic commit sends them again.
  if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
    log::debug("Offset commit deferred by a rebalance", {{"error", rd_kafka_err2str(err)}});
  else if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    log::warn("Offset commit failed", {{"error", rd_kafka_err2str(err)}});
}

std::string rdkafka_consumer::last_commits(const rd_kafka_topic_partition_list_t* partitions) const {
  std::map<int32_t, std::string> by_partition;
  for (int i = 0; i < partitions->cnt; ++i) {
    auto it = acknowledged_.find(partitions->elems[i].partition);
    by_partition[partitions->elems[i].partition] =
      it == acknowledged_.end() ? "none" : std::to_string(it->second);
  }
  std::string text;
  for (auto& [partition, offset] : by_partition)
    text += (text.empty() ? "" : ",") + std::to_string(partition) + ":" + offset;
  return text;
}

void rdkafka_consumer::on_statistics(const client_health& health) {
  joined_ = health.group_joined;
  std::map<metrics::partition_gauge::key, int64_t> lag;
  for (auto& [where, value] : health.consumer_lag)
    if (where.first == topic_ && assigned_.count(where.second))
      lag.emplace(where, value);
  metrics::global().consumer_lag.replace(std::move(lag));
}

void rdkafka_consumer::set_assigned(std::set<int32_t> partitions) {
  assigned_ = std::move(partitions);
  metrics::global().consumer_assigned_partitions.set(static_cast<int64_t>(assigned_.size()));
  // Until the next statistics, show lag only for the partitions still owned.
  std::map<metrics::partition_gauge::key, int64_t> none;
  metrics::global().consumer_lag.replace(std::move(none));
}

void rdkafka_consumer::on_rebalance(rd_kafka_t* client, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<rdkafka_consumer*>(opaque);
  bool cooperative = std::string_view{rd_kafka_rebalance_protocol(client)} == "COOPERATIVE";
  auto owned = cooperative ? self->assigned_ : std::set<int32_t>{};
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    auto* start = rd_kafka_topic_partition_list_copy(partitions);
    auto resumed = self->start_after_stored(client, start);
    // An incremental rebalance that gives this member nothing new still calls here: say only
    // what moved.
    if (partitions->cnt > 0) {
      auto which = numbers(partitions);
      log::field_list fs{{"topic", self->topic_}, {"count", partitions->cnt}, {"partitions", which}};
      if (!resumed.empty())
        fs.push_back({"storedUpTo", resumed});
      log::write(log::level::info, "Partitions assigned", fs);
    }
    if (cooperative)
      check(rd_kafka_incremental_assign(client, start));
    else
      rd_kafka_assign(client, start);
    rd_kafka_topic_partition_list_destroy(start);
    for (int i = 0; i < partitions->cnt; ++i) {
      owned.insert(partitions->elems[i].partition);
      self->acknowledged_.erase(partitions->elems[i].partition); // others may have committed since
    }
    self->set_assigned(std::move(owned));
    self->warn_if_partial_view(client);
    if (self->paused_.load())
      rd_kafka_pause_partitions(client, partitions); // the store is still down
    return;
  }
  self->revoke(client, partitions);
  if (cooperative)
    check(rd_kafka_incremental_unassign(client, partitions));
  else
    rd_kafka_assign(client, nullptr);
  for (int i = 0; i < partitions->cnt; ++i)
    owned.erase(partitions->elems[i].partition);
  self->set_assigned(std::move(owned));
}

std::string rdkafka_consumer::start_after_stored(rd_kafka_t* client,
                                                rd_kafka_topic_partition_list_t* assigned) {
  if (assigned->cnt == 0)
    return {};
  auto* committed = rd_kafka_topic_partition_list_copy(assigned);
  if (auto err = rd_kafka_committed(client, committed, 5000)) {
    rd_kafka_topic_partition_list_destroy(committed);
    log::warn("Committed offsets unknown: the assigned partitions start from the group's commits",
              {{"error", rd_kafka_err2str(err)}});
    return {};
  }
  auto last = from_list(committed);
  for (int i = 0; i < committed->cnt; ++i)
    if (committed->elems[i].err)
      last[static_cast<size_t>(i)].offset = RD_KAFKA_OFFSET_INVALID; // as good as none
  rd_kafka_topic_partition_list_destroy(committed);
  std::map<int32_t, int64_t> moved;
  for (auto& p : listener_->on_assigned(last)) {
    auto commit = std::find_if(last.begin(), last.end(), [&](const partition_offset& c) {
      return c.topic == p.topic && c.partition == p.partition;
    });
    auto* start = rd_kafka_topic_partition_list_find(assigned, p.topic.c_str(), p.partition);
    if (commit == last.end() || !start || commit->offset < 0 || p.offset <= commit->offset)
      continue;
    start->offset = p.offset;
    moved[p.partition] = p.offset;
  }
  std::string text;
  for (auto& [partition, offset] : moved)
    text += (text.empty() ? "" : ",") + std::to_string(partition) + ":" + std::to_string(offset);
  return text;
}

void rdkafka_consumer::revoke(rd_kafka_t* client, rd_kafka_topic_partition_list_t* partitions) {
  // Lost: the group gave them to others already (this member missed its session, or was
  // fenced), and a commit would be refused.
  bool lost = rd_kafka_assignment_lost(client);
  auto which = numbers(partitions);
  if (lost && partitions->cnt > 0)
    log::warn("Partitions lost", {{"topic", topic_}, {"count", partitions->cnt},
                                  {"partitions", which},
                                  {"readAgainFrom", last_commits(partitions)}});
  else if (partitions->cnt > 0)
    log::info("Partitions revoked", {{"topic", topic_}, {"count", partitions->cnt},
                                     {"partitions", which}});
  // Records polled before this rebalance go to the listener first, so that they are among the
  // work it finishes before the partitions move.
  if (!batch_.empty())
    hand_over();
  auto done = listener_->on_revoked(from_list(partitions));
  if (lost || done.empty())
    return;
  // Every done position, those already stored for librdkafka's next automatic commit too: that
  // commit would go out after the partitions are gone, racing their next owner's first fetch.
  // Stored as well: librdkafka commits what is stored for partitions it unassigns, and an older
  // stored position committed after this one would move the group back.
  // Synchronously: the next owner starts reading from this commit.
  auto* list = to_list(done);
  rd_kafka_offsets_store(client, list);
  if (auto err = rd_kafka_commit(client, list, 0)) {
    // Refused while another member (re)joins (librdkafka's mock broker refuses commits through
    // every rebalance); the group cannot move on until this member lets the partitions go, so
    // they go. With the store in memory their next owner reads again what was done here since
    // the last commit; a database store's next owner starts where its read positions say.
    if (memory_store_)
      log::warn("Offset commit on revocation failed",
                {{"topic", topic_}, {"partitions", which}, {"error", rd_kafka_err2str(err)},
                 {"readAgainFrom", last_commits(partitions)}});
    else
      log::info("Offset commit on revocation refused: the next owner starts from the read "
                "positions stored with the events",
                {{"topic", topic_}, {"partitions", which}, {"error", rd_kafka_err2str(err)}});
  } else {
    for (auto& p : done)
      acknowledged_[p.partition] = p.offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void rdkafka_consumer::warn_if_partial_view(rd_kafka_t* client) {
  // A shared store (PostgreSQL) serves every member's events; a member given nothing yet (while
  // partitions move to it) has no view to speak of.
  if (warned_partial_view_ || !memory_store_ || assigned_.empty())
    return;
  int total = partition_count(client, topic_);
  if (total == 0 || static_cast<int>(assigned_.size()) >= total)
    return;
  warned_partial_view_ = true;
  log::warn("Other members share the consumer group, but the store is in memory: this instance "
            "stores and serves only the events of its own partitions",
            {{"group", group_},
             {"assigned", static_cast<int64_t>(assigned_.size())},
             {"partitions", total}});
}

} // namespace uas::kafka
