#include "kafka/rdkafka_producer.hpp"

#include <cstdint>

#include "core/log.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

void rdkafka_producer::on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void* self) {
  auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
  static_cast<rdkafka_producer*>(self)->report(id, msg->err ? rd_kafka_err2str(msg->err) : "");
}

int rdkafka_producer::on_statistics(rd_kafka_t*, char* json, size_t len, void* self) {
  static_cast<rdkafka_producer*>(self)->brokers_up_.store(parse_statistics(json, len).broker_up);
  return 0; // librdkafka frees the JSON
}

void rdkafka_producer::on_reports_waiting(rd_kafka_t*, void* self) {
  static_cast<rdkafka_producer*>(self)->waiting_();
}

void rdkafka_producer::report(uint64_t id, std::string error) {
  std::lock_guard<std::mutex> guard{mutex_};
  delivered_.push_back({id, std::move(error)});
}

rdkafka_producer::rdkafka_producer(const config& cfg, const std::string& bootstrap)
  : topic_{cfg.topic} {
  rd_kafka_conf_t* conf = make_conf(producer_settings(cfg, bootstrap));
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery_report);
  rd_kafka_conf_set_stats_cb(conf, on_statistics);
  rd_kafka_conf_set_opaque(conf, this);
  client_ = make_client(RD_KAFKA_PRODUCER, conf);
  // Learn the topic's partitions and leaders now rather than on the first POST, which would
  // otherwise wait for them (hundreds of milliseconds).
  if (rd_kafka_topic_t* topic = rd_kafka_topic_new(client_, topic_.c_str(), nullptr)) {
    const struct rd_kafka_metadata* metadata = nullptr;
    if (rd_kafka_metadata(client_, 0, topic, &metadata,
                          static_cast<int>(cfg.connection_timeout.count()))
        == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(metadata);
      brokers_up_ = true; // until the first statistics say otherwise
    }
    rd_kafka_topic_destroy(topic);
  }
  reports_ = rd_kafka_queue_get_main(client_);
}

rdkafka_producer::~rdkafka_producer() {
  rd_kafka_queue_cb_event_enable(reports_, nullptr, nullptr);
  // Whatever is still queued fails now; nobody is left to take those reports.
  rd_kafka_purge(client_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(client_, 0);
  rd_kafka_queue_destroy(reports_);
  rd_kafka_destroy(client_);
}

void rdkafka_producer::notify_deliveries(std::function<void()> waiting) {
  waiting_ = std::move(waiting);
  rd_kafka_queue_cb_event_enable(reports_, on_reports_waiting, this);
  // The queue only signals when it turns non-empty: whatever is in it already needs a first look.
  waiting_();
}

std::vector<delivery> rdkafka_producer::take_deliveries() {
  rd_kafka_poll(client_, 0); // runs on_delivery_report (and statistics) for what is queued
  std::vector<delivery> taken;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    taken.swap(delivered_);
  }
  // Reports that arrived while polling were queued behind a non-empty queue: no signal for them.
  if (rd_kafka_queue_length(reports_) > 0 && waiting_)
    waiting_();
  return taken;
}

void rdkafka_producer::produce(const std::string& key, const std::string& value, uint64_t id) {
  auto err = rd_kafka_producev(
    client_, RD_KAFKA_V_TOPIC(topic_.c_str()),
    RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
    RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
    RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(id))), RD_KAFKA_V_END);
  if (err) {
    // Refused before it was queued (queue full, fatal state): the same report, right away.
    report(id, rd_kafka_err2str(err));
    if (waiting_)
      waiting_();
  }
}

bool rdkafka_producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(client_, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

} // namespace uas::kafka
