// librdkafka properties for the producer and the consumer, and the start-up reachability probe.
#include "kafka/settings.hpp"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/log.hpp"

namespace uas::kafka {

namespace {

// librdkafka logs through this rather than straight to stderr, so its lines share our format.
void forward_log(const rd_kafka_t*, int level, const char* facility, const char* message) {
  // syslog levels. librdkafka reports a refused connection at 3, which during an outage repeats
  // every reconnect: a warning, not an error of ours.
  auto lvl = level <= 2 ? log::level::error : level <= 4 ? log::level::warn : log::level::debug;
  log::write(lvl, "Kafka client", {{"facility", facility}, {"detail", message}});
}

// How every client of the service (producer, consumer, dead-letter producer, the start-up probe)
// reaches the brokers: load_config has checked that the settings agree with each other.
void security(const kafka_security& k, settings& s) {
  s.push_back({"security.protocol", k.protocol});
  if (k.sasl()) {
    s.push_back({"sasl.mechanism", k.sasl_mechanism});
    s.push_back({"sasl.username", k.sasl_username});
    s.push_back({"sasl.password", k.sasl_password});
  }
  if (!k.ssl_ca_location.empty())
    s.push_back({"ssl.ca.location", k.ssl_ca_location});
}

settings common(const config& cfg, const std::string& bootstrap) {
  settings s = {
    {"bootstrap.servers", bootstrap},
    {"client.id", cfg.client_id},
    {"socket.connection.setup.timeout.ms", std::to_string(cfg.connection_timeout.count())},
    // A broker thread notices timed-out messages when it wakes to reconnect; librdkafka's 10 s
    // ceiling on reconnect backoff would stretch an outage's publish bound by that much.
    {"reconnect.backoff.max.ms", "1000"},
    // Readiness and kafka_up come from these statistics: broker and group states, every second.
    {"statistics.interval.ms", "1000"},
    // A 201 waits for its produce request's answer: Nagle's algorithm would hold a small request
    // back while an earlier one is unacknowledged (docs/performance.md, "Second round").
    {"socket.nagle.disable", "true"},
  };
  security(cfg.kafka_auth, s);
  return s;
}

} // namespace

void on_client_error(rd_kafka_t* client, int err, const char* reason, void*) {
  char fatal_reason[512];
  if (err == RD_KAFKA_RESP_ERR__FATAL
      && rd_kafka_fatal_error(client, fatal_reason, sizeof fatal_reason))
    log::error("Kafka client fatal error", {{"error", fatal_reason}});
  else
    log::debug("Kafka client error", {{"error", reason}});
}

settings producer_settings(const config& cfg, const std::string& bootstrap) {
  auto s = common(cfg, bootstrap);
  s.insert(s.end(), {
    // librdkafka's own resends carry sequence numbers, so they never duplicate an event.
    {"enable.idempotence", "true"},
    // One publish attempt's bound; librdkafka's default would be 300 s.
    {"message.timeout.ms", std::to_string(cfg.request_timeout.count())},
    {"request.timeout.ms", std::to_string(std::min<long long>(cfg.request_timeout.count(), 30000))},
    // A request body may be 1 MiB; its event, with eventId and timestamp added, a little more.
    {"message.max.bytes", std::to_string(2 * 1024 * 1024)},
    // How long an event waits for company before its batch goes out, and how much company is
    // enough. Batches are per partition, and an idempotent producer keeps at most five produce
    // requests in flight to a broker, whatever the partitions: a cap of 16 events a batch (tuned
    // to one key on one partition) capped the whole producer at 5 x 16 events a round trip, some
    // 20,000 a second over 8 partitions and 1,000 keys. Uncapped, events that wait for a free
    // request slot go out together in the next one. A batch not waiting for a slot waits at most
    // 1 ms; librdkafka's broker thread sleeps in whole milliseconds anyway, and at 0 it spins
    // (docs/performance.md, runs 5, 6 and 13).
    {"linger.ms", "1"},
    {"batch.num.messages", "10000"},
    // Every event the service lets wait (MAX_IN_FLIGHT) fits in the client's queue: a full queue
    // would fail a produce at once, a 500 where the client should have got a 503.
    {"queue.buffering.max.messages", std::to_string(std::max<size_t>(cfg.max_in_flight, 1000))},
    // The same key-to-partition mapping as the Java client and kafkajs.
    {"partitioner", "murmur2_random"},
  });
  return s;
}

settings dead_letter_settings(const config& cfg, const std::string& bootstrap) {
  auto s = producer_settings(cfg, bootstrap);
  s.insert(s.end(), {
    // The topic is made on purpose, with its own retention (docs/operations.md): a dead letter
    // waits for it rather than have a broker that auto-creates topics make one with defaults.
    {"allow.auto.create.topics", "false"},
    // A message is dead-lettered as it was read, whatever its size: the broker judges it. What
    // it refuses is counted and logged as lost (events_dead_letter_failed_total).
    {"message.max.bytes", std::to_string(64 * 1024 * 1024)},
    // A missing topic fails an attempt after this rather than librdkafka's 30 s; the consumer
    // retries with backoff, and says so each time.
    {"topic.metadata.propagation.max.ms", "1000"},
  });
  return s;
}

settings consumer_settings(const config& cfg, const std::string& bootstrap) {
  auto s = common(cfg, bootstrap);
  s.insert(s.end(), {
    {"group.id", cfg.consumer_group},
    // A new group starts from the beginning of the topic, as the seed's fromBeginning does.
    {"auto.offset.reset", "earliest"},
    // The consumer actor stores a position only once the store has answered for everything before
    // it (at least once); librdkafka commits what is stored every second, retries a commit the
    // broker refused (during a rebalance, say), and commits before partitions are unassigned.
    {"enable.auto.commit", "true"},
    {"enable.auto.offset.store", "false"},
    {"auto.commit.interval.ms", "1000"},
    // Incremental rebalancing: a member joining or leaving moves only the partitions that must
    // move; the others are neither revoked nor paused, and their positions stay where they are.
    {"partition.assignment.strategy", "cooperative-sticky"},
    // A real broker answers a fetch as soon as data arrives, so this only paces idle polling;
    // librdkafka's mock broker (embedded, and in tests) holds every fetch this long, which makes
    // it the floor of the time from publish to store there.
    {"fetch.wait.max.ms", "10"},
    // Prefetch at most 16 MB per partition (librdkafka's default is 64 MB): the store outpaces
    // the fetcher anyway, and memory that held a burst stays with the process afterwards.
    {"queued.max.messages.kbytes", "16384"},
    // A member that dies (SIGKILL, a lost machine) keeps its partitions this long before the group
    // moves them; a shorter time also means a slow member is dropped sooner.
    {"session.timeout.ms", std::to_string(cfg.session_timeout.count())},
    // Heartbeats are how a member learns of a rebalance: at least three per session.
    {"heartbeat.interval.ms",
     std::to_string(std::min<long long>(1000, cfg.session_timeout.count() / 3))},
  });
  return s;
}

rd_kafka_conf_t* make_conf(const settings& values) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char reason[512];
  for (auto& [key, value] : values) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason, sizeof reason)
        != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      // A secret's value stays out of the message (librdkafka takes any text as a password, so
      // its own reason never quotes one).
      bool secret = key == "sasl.password" || key == "ssl.key.password";
      throw std::runtime_error{"Kafka setting " + key + "=" + (secret ? "***" : value)
                               + " refused: " + reason};
    }
  }
  rd_kafka_conf_set_log_cb(conf, forward_log);
  rd_kafka_conf_set_error_cb(conf, on_client_error);
  return conf;
}

rd_kafka_t* make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char reason[512];
  rd_kafka_t* client = rd_kafka_new(type, conf, reason, sizeof reason);
  if (!client) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error{std::string{"cannot create Kafka client: "} + reason};
  }
  return client;
}

client_health parse_statistics(const char* json, size_t len) {
  client_health health;
  auto stats = nlohmann::json::parse(json, json + len, nullptr, false);
  if (!stats.is_object())
    return health;
  if (auto brokers = stats.find("brokers"); brokers != stats.end() && brokers->is_object())
    for (auto& b : *brokers)
      if (b.value("state", "") == "UP" && b.value("nodeid", -1) >= 0)
        health.broker_up = true;
  if (auto group = stats.find("cgrp"); group != stats.end() && group->is_object())
    health.group_joined = group->value("state", "") == "up"
                          && group->value("join_state", "") == "steady";
  if (auto topics = stats.find("topics"); topics != stats.end() && topics->is_object())
    for (auto& [name, topic] : topics->items()) {
      auto partitions = topic.find("partitions");
      if (partitions == topic.end() || !partitions->is_object())
        continue;
      for (auto& p : *partitions) {
        if (!p.is_object())
          continue;
        // -1 is librdkafka's internal "unassigned" partition; a lag of -1 means not known.
        int32_t number = p.value("partition", -1);
        int64_t lag = p.value("consumer_lag", int64_t{-1});
        if (number >= 0 && lag >= 0)
          health.consumer_lag[{name, number}] = lag;
      }
    }
  return health;
}

std::string probe_brokers(const config& cfg, const std::string& bootstrap) {
  auto values = common(cfg, bootstrap);
  // The probe's own connection failures are the answer, not something to log.
  values.push_back({"log_level", "0"});
  values.push_back({"statistics.interval.ms", "0"});
  rd_kafka_t* client = make_client(RD_KAFKA_PRODUCER, make_conf(values));
  const struct rd_kafka_metadata* metadata = nullptr;
  auto err = rd_kafka_metadata(client, 0, nullptr, &metadata,
                               static_cast<int>(cfg.connection_timeout.count()));
  if (metadata)
    rd_kafka_metadata_destroy(metadata);
  rd_kafka_destroy(client);
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? std::string{} : rd_kafka_err2str(err);
}

} // namespace uas::kafka
