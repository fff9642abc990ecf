// The producer client on librdkafka: records go to one topic (the events' topic, or the
// dead-letter topic), and librdkafka's delivery report is the only word on whether the broker
// has one.
#pragma once

#include <atomic>
#include <mutex>

#include <librdkafka/rdkafka.h>

#include "core/config.hpp"
#include "core/kafka_clients.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

// No thread of ours waits on librdkafka: when its report queue turns non-empty, librdkafka's own
// thread calls the owner's notification, and the owner serves the queue without blocking
// (take_deliveries). A batch of acknowledgements thus costs one wake-up and one message.
class rdkafka_producer final : public producer_client {
public:
  // The events' producer: KAFKA_TOPIC, with producer_settings.
  rdkafka_producer(const config& cfg, const std::string& bootstrap);
  // A producer for `topic` with these settings; asks for the topic's metadata, waiting up to
  // `metadata_timeout`, so that the first record need not.
  rdkafka_producer(const settings& values, std::string topic,
                   std::chrono::milliseconds metadata_timeout);
  ~rdkafka_producer() override;

  void produce(const outgoing_message& message, uint64_t id) override;
  void notify_deliveries(std::function<void()> waiting) override;
  std::vector<delivery> take_deliveries() override;
  bool flush(std::chrono::milliseconds timeout) override;

  // Whether a broker connection is up, as of librdkafka's last statistics (at most 1 s old; at
  // first, whether the brokers answered the constructor's request for metadata), or down since
  // librdkafka said all brokers are. The one word on broker state: readiness, kafka_up and
  // turning POSTs away while every broker is down.
  bool brokers_up() const override { return brokers_up_.load(); }

  // Whether the brokers know the topic: empty when they do, else why not. Waits up to `timeout`.
  std::string topic_missing(std::chrono::milliseconds timeout) const;

private:
  static void on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* msg, void* self);
  static int on_statistics(rd_kafka_t*, char* json, size_t len, void* self);
  static void on_error(rd_kafka_t* client, int err, const char* reason, void* self);
  static void on_reports_waiting(rd_kafka_t*, void* self);
  void report(uint64_t id, std::string error, bool permanent);

  rd_kafka_t* client_;
  rd_kafka_queue_t* reports_ = nullptr; // librdkafka's main queue: reports and statistics
  std::string topic_;
  std::atomic<bool> brokers_up_{false};
  std::function<void()> waiting_;
  std::mutex mutex_; // reports are served wherever librdkafka is polled: the owner, or flush
  std::vector<delivery> delivered_;
};

} // namespace uas::kafka
