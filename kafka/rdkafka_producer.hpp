// The producer client on librdkafka: records go to the topic keyed by userId, and librdkafka's
// delivery report is the only word on whether the broker has one.
#pragma once

#include <atomic>
#include <thread>

#include <librdkafka/rdkafka.h>

#include "actors/config.hpp"
#include "kafka/clients.hpp"

namespace uas::kafka {

class rdkafka_producer final : public producer_client {
public:
  rdkafka_producer(const config& cfg, const std::string& bootstrap);
  ~rdkafka_producer() override;

  void produce(const std::string& key, const std::string& value,
               delivery_handler on_delivery) override;
  bool flush(std::chrono::milliseconds timeout) override;

  // Whether a broker connection is up, as of librdkafka's last statistics (at most 1 s old).
  bool brokers_up() const { return brokers_up_.load(); }

private:
  rd_kafka_t* client_;
  std::string topic_;
  std::atomic<bool> polling_{true};
  std::atomic<bool> brokers_up_{false};
  std::thread poller_; // serves delivery reports, so no actor ever waits on librdkafka
};

} // namespace uas::kafka
