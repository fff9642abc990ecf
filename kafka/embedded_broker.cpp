#include "kafka/embedded_broker.hpp"

#include <stdexcept>

#include "kafka/settings.hpp"

namespace uas::kafka {

embedded_broker::embedded_broker(const std::string& topic, int partitions) {
  owner_ = make_client(RD_KAFKA_PRODUCER, make_conf({
    // The owning handle never connects anywhere; silence its complaints about having no brokers.
    {"log_level", "0"},
    // The mock cluster's broker takes this from its owner for the connections it accepts. With
    // Nagle's algorithm on (librdkafka's default, unlike any real Kafka broker), an answer
    // written in two parts waits for the client's delayed acknowledgement, up to 40 ms.
    {"socket.nagle.disable", "true"},
  }));
  cluster_ = rd_kafka_mock_cluster_new(owner_, 1);
  if (!cluster_) {
    rd_kafka_destroy(owner_);
    throw std::runtime_error{"cannot start the embedded Kafka broker"};
  }
  address_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  try {
    create_topic(topic, partitions);
  } catch (...) {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(owner_);
    throw;
  }
}

embedded_broker::~embedded_broker() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(owner_);
}

void embedded_broker::create_topic(const std::string& topic, int partitions) {
  if (auto err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1))
    throw std::runtime_error{"cannot create topic " + topic + " on the embedded broker: "
                             + rd_kafka_err2str(err)};
}

} // namespace uas::kafka
