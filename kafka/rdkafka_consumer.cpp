#include "kafka/rdkafka_consumer.hpp"

#include <malloc.h>
#include <pthread.h>
#include <stdexcept>

#include "core/log.hpp"
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

void on_commit(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*, void*) {
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    log::warn("Offset commit failed", {{"error", rd_kafka_err2str(err)}});
}

} // namespace

rdkafka_consumer::rdkafka_consumer(const config& cfg, const std::string& bootstrap)
  : topic_{cfg.topic} {
  rd_kafka_conf_t* conf = make_conf(consumer_settings(cfg, bootstrap));
  rd_kafka_conf_set_opaque(conf, this);
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
    static_cast<rdkafka_consumer*>(opaque)->joined_ = parse_statistics(json, len).group_joined;
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
  rd_kafka_commit(client_, list, 1); // async: the answer arrives at on_commit
  rd_kafka_topic_partition_list_destroy(list);
}

void rdkafka_consumer::poll_loop() {
  pthread_setname_np(pthread_self(), "kafka-consumer"); // for top -H, perf and gdb
  std::vector<record> batch;
  size_t since_trim = 0; // records taken since memory was last given back
  while (polling_.load(std::memory_order_relaxed)) {
    // Wait for the first record, then take whatever else is already fetched.
    for (int timeout_ms = 100; batch.size() < max_batch; timeout_ms = 0) {
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
        batch.push_back(std::move(r));
      }
      rd_kafka_message_destroy(msg);
    }
    if (!batch.empty()) {
      since_trim += batch.size();
      listener_->on_records(std::move(batch));
      batch.clear();
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

void rdkafka_consumer::on_rebalance(rd_kafka_t* client, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<rdkafka_consumer*>(opaque);
  bool cooperative = std::string_view{rd_kafka_rebalance_protocol(client)} == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    log::info("Partitions assigned", {{"topic", self->topic_}, {"count", partitions->cnt}});
    if (cooperative)
      check(rd_kafka_incremental_assign(client, partitions));
    else
      rd_kafka_assign(client, partitions);
    return;
  }
  log::info("Partitions revoked", {{"topic", self->topic_}, {"count", partitions->cnt}});
  auto done = self->listener_->on_revoked(from_list(partitions));
  if (!done.empty()) {
    auto* list = to_list(done);
    if (auto commit_err = rd_kafka_commit(client, list, 0))
      log::warn("Offset commit on revocation failed", {{"error", rd_kafka_err2str(commit_err)}});
    rd_kafka_topic_partition_list_destroy(list);
  }
  if (cooperative)
    check(rd_kafka_incremental_unassign(client, partitions));
  else
    rd_kafka_assign(client, nullptr);
}

} // namespace uas::kafka
