// librdkafka configuration in one place: which properties the service sets, and why.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "core/config.hpp"

namespace uas::kafka {

using settings = std::vector<std::pair<std::string, std::string>>;

settings producer_settings(const config& cfg, const std::string& bootstrap);
settings consumer_settings(const config& cfg, const std::string& bootstrap);
// The dead-letter producer's: the producer's, with what a dead letter needs on top.
settings dead_letter_settings(const config& cfg, const std::string& bootstrap);

// A librdkafka configuration with every setting applied, its log and errors going to
// forward_log and on_client_error; throws naming the setting it refuses.
rd_kafka_conf_t* make_conf(const settings& values);

// Errors librdkafka recovers from by itself are already in its log; only a fatal one (the
// idempotent producer can no longer guarantee order) needs saying.
void on_client_error(rd_kafka_t* client, int err, const char* reason, void* opaque);

// Creates a client from `conf` (taking ownership of it); throws with librdkafka's reason.
rd_kafka_t* make_client(rd_kafka_type_t type, rd_kafka_conf_t* conf);

// librdkafka's periodic statistics (JSON), as readiness and /metrics read them.
struct client_health {
  bool broker_up = false;    // some broker connection is up
  bool group_joined = false; // the consumer group is up and steady
  // Per topic and partition: messages past the group's committed offset, where librdkafka knows
  // both ends (a consumer's statistics only).
  std::map<std::pair<std::string, int32_t>, int64_t> consumer_lag;
};
client_health parse_statistics(const char* json, size_t len);

// Asks the brokers for metadata; an empty string when they answered within `timeout_ms`,
// else the reason.
std::string probe_brokers(const config& cfg, const std::string& bootstrap);

} // namespace uas::kafka
