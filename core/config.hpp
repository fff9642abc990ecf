// The service's configuration: one struct, read from the environment (after a .env file) and
// validated once at start.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace uas {

enum class log_format { text, json };

// How the Kafka clients authenticate and encrypt, in librdkafka's terms; checked for consistency
// at start (a SASL protocol has a mechanism, a user name and a password; no SASL setting without
// one).
struct kafka_security {
  std::string protocol = "plaintext"; // plaintext, ssl, sasl_plaintext, sasl_ssl
  std::string sasl_mechanism;         // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
  std::string sasl_username;
  std::string sasl_password; // a secret: never logged
  std::string ssl_ca_location; // empty: the system's CA certificates

  bool sasl() const { return protocol.rfind("sasl_", 0) == 0; }
  bool ssl() const { return protocol == "ssl" || protocol == "sasl_ssl"; }
};

struct config {
  std::string host = "0.0.0.0"; // address to listen on
  uint16_t port = 3000;
  std::string app_env = "development";
  std::string kafka_brokers = "embedded"; // "embedded" or host:port[,host:port...]
  int embedded_partitions = 3;
  std::string client_id = "user-activity-service";
  std::string topic = "user-activity-events";
  std::string consumer_group = "user-activity-consumer-group";
  // Where the consumer sends what it cannot store; empty: such messages are skipped and logged.
  std::string dlq_topic = "user-activity-events.dlq";
  int producer_retries = 3;
  std::chrono::milliseconds retry_backoff{500};
  std::chrono::milliseconds connection_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds session_timeout{10000};
  std::string log_level = "info";
  log_format format = log_format::text;
  int http_threads = 64;      // kept warm
  int http_max_threads = 4096; // started while every thread is busy, up to this
  size_t batch_max_events = 500;
  size_t max_in_flight = 50000; // events waiting for the broker before new requests get 503
  std::string api_keys_file;  // empty: no keys, every route open
  int rate_limit_per_key = 0; // events per second per API key; 0: no limit
  std::string tls_cert_file;  // both empty: plain HTTP
  std::string tls_key_file;
  kafka_security kafka_auth;
  // Origins (scheme://host[:port]) whose browser pages may POST events; "*" for any.
  std::vector<std::string> cors_allowed_origins;

  // "memory", or a libpq connection URI: it may hold a password, so show it with redact_url().
  std::string store_url = "memory";
  int store_retention_days = 0; // 0: keep forever
  uint64_t store_memory_max_events = 1'000'000;

  bool embedded_broker() const { return kafka_brokers == "embedded"; }
  bool tls() const { return !tls_cert_file.empty(); }
  bool memory_store() const { return store_url == "memory"; }
};

// A database URL as it may be shown (logs, errors, --help): its password, if any, masked.
std::string redact_url(const std::string& url);

// The hosts (host[:port], comma-separated) a database URL names, for messages about reaching them.
std::string url_hosts(const std::string& url);

// A variable whose value does not parse; `what()` names it.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Looks a variable up; empty optional when unset.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

// Builds the configuration from `lookup`; throws config_error on the first bad value.
config load_config(const env_lookup& lookup);

// Reads KEY=VALUE lines (comments, blank lines, `export`, quotes allowed) from a .env file's text.
std::map<std::string, std::string> parse_dotenv(const std::string& text);

// The process environment, falling back to the .env file at `dotenv_path` when it exists.
env_lookup process_environment(const std::string& dotenv_path = ".env");

// The configuration table (variable, default, meaning), as printed by --help.
std::string config_table();

} // namespace uas
