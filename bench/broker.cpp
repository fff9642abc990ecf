// A Kafka-protocol broker in its own process (librdkafka's mock cluster), holding the given
// topics (NAME or NAME:PARTITIONS, 3 by default); prints its address and runs until stdin closes.
// The mock keeps about 5 MB per partition, dropping the oldest messages beyond that.
#include <iostream>
#include <memory>
#include <vector>

#include "kafka/embedded_broker.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_broker TOPIC [TOPIC...]\n";
    return 2;
  }
  auto topic = [](std::string arg) {
    auto colon = arg.find(':');
    int partitions = colon == std::string::npos ? 3 : std::stoi(arg.substr(colon + 1));
    return std::make_pair(arg.substr(0, colon), partitions);
  };
  auto [first, partitions] = topic(argv[1]);
  uas::kafka::embedded_broker broker{first, partitions};
  for (int i = 2; i < argc; ++i) {
    auto [name, n] = topic(argv[i]);
    rd_kafka_mock_topic_create(broker.cluster(), name.c_str(), n, 1);
  }
  std::cout << broker.address() << std::endl;
  std::string ignored;
  while (std::getline(std::cin, ignored)) {
  }
}
