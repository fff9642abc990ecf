// Produces N valid events (~150 bytes each, distinct eventIds) straight to a topic, as fast as
// librdkafka batches them; exits once the broker acknowledged every one.
#include <atomic>
#include <iostream>
#include <string>

#include <librdkafka/rdkafka.h>

#include "core/event.hpp"
#include "kafka/settings.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: bench_produce BROKER TOPIC COUNT\n";
    return 2;
  }
  std::string topic = argv[2];
  long count = std::stol(argv[3]);
  auto conf = uas::kafka::make_conf({{"bootstrap.servers", argv[1]},
                                     {"linger.ms", "20"},
                                     {"batch.num.messages", "10000"},
                                     {"queue.buffering.max.messages", "1000000"}});
  static std::atomic<long> failed{0};
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err)
      ++failed;
  });
  auto* producer = uas::kafka::make_client(RD_KAFKA_PRODUCER, conf);
  for (long i = 0; i < count; ++i) {
    uas::event e{uas::make_uuid(), "bench-user-" + std::to_string(i % 1000), "PRODUCT_VIEW",
                 uas::utc_timestamp_now(), R"({"productId":"p-)" + std::to_string(i % 5000) + "\"}"};
    auto value = uas::to_json(e);
    while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                             RD_KAFKA_V_KEY(e.user_id.data(), e.user_id.size()),
                             RD_KAFKA_V_VALUE(value.data(), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)
           == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(producer, 10);
    rd_kafka_poll(producer, 0);
  }
  rd_kafka_flush(producer, 60000);
  rd_kafka_destroy(producer);
  if (failed) {
    std::cerr << failed << " events were not delivered\n";
    return 1;
  }
}
