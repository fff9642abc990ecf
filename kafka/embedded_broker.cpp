#include "kafka/embedded_broker.hpp"

#include <stdexcept>

#include "kafka/settings.hpp"

namespace uas::kafka {

embedded_broker::embedded_broker(const std::string& topic, int partitions) {
  // The owning handle never connects anywhere; silence its complaints about having no brokers.
  owner_ = make_client(RD_KAFKA_PRODUCER, make_conf({{"log_level", "0"}}));
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
