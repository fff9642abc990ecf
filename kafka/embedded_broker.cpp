#include "kafka/embedded_broker.hpp"

#include <stdexcept>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "kafka/settings.hpp"

// librdkafka's mock broker accepts connections with a plain accept() and leaves Nagle's algorithm
// on, as no real Kafka broker does: a response written in two parts then waits for the client's
// delayed acknowledgement, up to 40 ms (under load: POST p99 27-50 ms instead of 5-7 ms). This
// definition comes before libc's in the symbol lookup of every library in the process, so the
// mock's accept() lands here and turns Nagle off on what it accepts. The process's other server,
// the HTTP one, turns it off on its sockets anyway.
extern "C" int accept(int listener, sockaddr* peer, socklen_t* peer_size) {
  int connection = accept4(listener, peer, peer_size, 0);
  if (connection >= 0) {
    int on = 1; // fails harmlessly on a socket that is not TCP
    setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  return connection;
}

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
  if (auto err = rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1)) {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(owner_);
    throw std::runtime_error{"cannot create topic " + topic + " on the embedded broker: "
                             + rd_kafka_err2str(err)};
  }
}

embedded_broker::~embedded_broker() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(owner_);
}

} // namespace uas::kafka
