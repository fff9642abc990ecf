#include "kafka/rdkafka_producer.hpp"

#include <cstdint>

#include "core/log.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

namespace {

// Failures that sending the same record again cannot mend: the record itself is refused.
// Anything else (a topic not there yet, a broker away, a timeout) may pass.
bool is_permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

} // namespace

void rdkafka_producer::on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void* self) {
  auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private));
  static_cast<rdkafka_producer*>(self)->report(id, msg->err ? rd_kafka_err2str(msg->err) : "",
                                               is_permanent(msg->err));
}

int rdkafka_producer::on_statistics(rd_kafka_t*, char* json, size_t len, void* self) {
  static_cast<rdkafka_producer*>(self)->brokers_up_.store(parse_statistics(json, len).broker_up);
  return 0; // librdkafka frees the JSON
}

void rdkafka_producer::on_error(rd_kafka_t* client, int err, const char* reason, void* self) {
  // Said the moment the last broker connection drops, where statistics may be a second away:
  // new POSTs are turned away (503) from then on. The next statistics say when one is back.
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    static_cast<rdkafka_producer*>(self)->brokers_up_ = false;
  on_client_error(client, err, reason, self);
}

void rdkafka_producer::on_reports_waiting(rd_kafka_t*, void* self) {
  static_cast<rdkafka_producer*>(self)->waiting_();
}

void rdkafka_producer::report(uint64_t id, std::string error, bool permanent) {
  std::lock_guard<std::mutex> guard{mutex_};
  delivered_.push_back({id, std::move(error), permanent});
}

rdkafka_producer::rdkafka_producer(const config& cfg, const std::string& bootstrap)
  : rdkafka_producer(producer_settings(cfg, bootstrap), cfg.topic, cfg.connection_timeout) {
}

rdkafka_producer::rdkafka_producer(const settings& values, std::string topic,
                                   std::chrono::milliseconds metadata_timeout)
  : topic_{std::move(topic)} {
  rd_kafka_conf_t* conf = make_conf(values);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery_report);
  rd_kafka_conf_set_stats_cb(conf, on_statistics);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, this);
  client_ = make_client(RD_KAFKA_PRODUCER, conf);
  // Learn the topic's partitions and leaders now rather than on the first POST, which would
  // otherwise wait for them (hundreds of milliseconds).
  if (rd_kafka_topic_t* topic = rd_kafka_topic_new(client_, topic_.c_str(), nullptr)) {
    const struct rd_kafka_metadata* metadata = nullptr;
    if (rd_kafka_metadata(client_, 0, topic, &metadata,
                          static_cast<int>(metadata_timeout.count()))
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

void rdkafka_producer::produce(const outgoing_message& message, uint64_t id) {
  // librdkafka takes the headers' ownership only when the record is queued.
  rd_kafka_headers_t* hs = nullptr;
  if (!message.headers.empty()) {
    hs = rd_kafka_headers_new(message.headers.size());
    for (auto& h : message.headers)
      rd_kafka_header_add(hs, h.name.data(), static_cast<ssize_t>(h.name.size()),
                          h.is_null ? nullptr : h.value.data(),
                          h.is_null ? 0 : static_cast<ssize_t>(h.value.size()));
  }
  auto bytes = [](bool present, const std::string& s) {
    return present ? const_cast<char*>(s.data()) : nullptr;
  };
  auto err = rd_kafka_producev(
    client_, RD_KAFKA_V_TOPIC(topic_.c_str()),
    RD_KAFKA_V_KEY(bytes(message.has_key, message.key), message.has_key ? message.key.size() : 0),
    RD_KAFKA_V_VALUE(bytes(message.has_value, message.value),
                     message.has_value ? message.value.size() : 0),
    RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
    RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(id))), RD_KAFKA_V_END);
  if (err) {
    if (hs)
      rd_kafka_headers_destroy(hs);
    // Refused before it was queued (queue full, too large, fatal state): the same report, now.
    report(id, rd_kafka_err2str(err), is_permanent(err));
    if (waiting_)
      waiting_();
  }
}

std::string rdkafka_producer::topic_missing(std::chrono::milliseconds timeout) const {
  rd_kafka_topic_t* topic = rd_kafka_topic_new(client_, topic_.c_str(), nullptr);
  if (!topic)
    return rd_kafka_err2str(rd_kafka_last_error());
  const struct rd_kafka_metadata* metadata = nullptr;
  auto err = rd_kafka_metadata(client_, 0, topic, &metadata, static_cast<int>(timeout.count()));
  if (!err && metadata->topic_cnt == 1)
    err = metadata->topics[0].err;
  if (metadata)
    rd_kafka_metadata_destroy(metadata);
  rd_kafka_topic_destroy(topic);
  return err ? rd_kafka_err2str(err) : std::string{};
}

bool rdkafka_producer::flush(std::chrono::milliseconds timeout) {
  return rd_kafka_flush(client_, static_cast<int>(timeout.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

} // namespace uas::kafka
