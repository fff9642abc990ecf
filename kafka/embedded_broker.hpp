// A Kafka-protocol broker inside the process (librdkafka's mock cluster): what the service runs on
// when KAFKA_BROKERS=embedded, and the fault injector for tests. It keeps nothing across restarts.
#pragma once

#include <string>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace uas::kafka {

class embedded_broker {
public:
  // Starts one broker on an ephemeral loopback port, holding `topic` with `partitions`.
  embedded_broker(const std::string& topic, int partitions);
  ~embedded_broker();
  embedded_broker(const embedded_broker&) = delete;
  embedded_broker& operator=(const embedded_broker&) = delete;

  // Adds a topic with `partitions`; throws with the broker's reason (one that exists already).
  void create_topic(const std::string& topic, int partitions);

  // host:port, for bootstrap.servers and kcat -b.
  const std::string& address() const { return address_; }

  // For fault injection: rd_kafka_mock_broker_set_down, rd_kafka_mock_push_request_errors, ...
  rd_kafka_mock_cluster_t* cluster() const { return cluster_; }

private:
  rd_kafka_t* owner_; // the mock cluster lives in a client handle of its own
  rd_kafka_mock_cluster_t* cluster_;
  std::string address_;
};

} // namespace uas::kafka
