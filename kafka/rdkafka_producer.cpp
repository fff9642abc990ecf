#include "kafka/rdkafka_producer.hpp"

#include <memory>

#include "actors/log.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

namespace {

void on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  std::unique_ptr<delivery_handler> handler{static_cast<delivery_handler*>(msg->_private)};
  if (handler)
    (*handler)(msg->err ? rd_kafka_err2str(msg->err) : std::string{});
}

int on_statistics(rd_kafka_t*, char* json, size_t len, void* opaque) {
  static_cast<std::atomic<bool>*>(opaque)->store(parse_statistics(json, len).broker_up);
  return 0; // librdkafka frees the JSON
}

} // namespace

rdkafka_producer::rdkafka_producer(const config& cfg, const std::string& bootstrap)
  : topic_{cfg.topic} {
  rd_kafka_conf_t* conf = make_conf(producer_settings(cfg, bootstrap));
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery_report);
  rd_kafka_conf_set_stats_cb(conf, on_statistics);
  rd_kafka_conf_set_opaque(conf, &brokers_up_);
  client_ = make_client(RD_KAFKA_PRODUCER, conf);
  // Learn the topic's partitions and leaders now rather than on the first POST, which would
  // otherwise wait for them (hundreds of milliseconds).
  if (rd_kafka_topic_t* topic = rd_kafka_topic_new(client_, topic_.c_str(), nullptr)) {
    const struct rd_kafka_metadata* metadata = nullptr;
    if (rd_kafka_metadata(client_, 0, topic, &metadata,
                          static_cast<int>(cfg.connection_timeout.count()))
        == RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_metadata_destroy(metadata);
    rd_kafka_topic_destroy(topic);
  }
  poller_ = std::thread{[this] {
    while (polling_.load(std::memory_order_relaxed))
      rd_kafka_poll(client_, 100);
  }};
}

rdkafka_producer::~rdkafka_producer() {
  polling_ = false;
  poller_.join();
  // Whatever is still queued fails now, so every handler runs once and nothing leaks.
  rd_kafka_purge(client_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(client_, 0);
  rd_kafka_destroy(client_);
}

void rdkafka_producer::produce(const std::string& key, const std::string& value,
                               delivery_handler on_delivery) {
  auto handler = std::make_unique<delivery_handler>(std::move(on_delivery));
  auto err = rd_kafka_producev(
    client_, RD_KAFKA_V_TOPIC(topic_.c_str()),
    RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
    RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(handler.get()), RD_KAFKA_V_END);
  if (err) {
    // Refused before it was queued (queue full, fatal state): the same report, right away.
    (*handler)(rd_kafka_err2str(err));
    return;
  }
  handler.release(); // on_delivery_report owns it now
}

bool rdkafka_producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(client_, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

} // namespace uas::kafka
