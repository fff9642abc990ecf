// Configuration parsing: every variable has a default, and a value that does not parse is an
// error naming the variable rather than a silent fallback.
#include "core/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace uas {

namespace {

struct variable {
  const char* name;
  const char* fallback;
  const char* meaning;
};

// The one list of variables: parsing, --help and the README table all follow it.
const std::vector<variable> variables = {
  {"HOST", "0.0.0.0", "address to listen on (`127.0.0.1`: this machine only)"},
  {"PORT", "3000", "HTTP port"},
  {"APP_ENV", "development", "free-form environment name, logged at start"},
  {"KAFKA_BROKERS", "embedded", "`embedded`: an in-process broker; else host:port[,host:port...]"},
  {"KAFKA_EMBEDDED_PARTITIONS", "3", "partitions of the topic on the embedded broker"},
  {"KAFKA_CLIENT_ID", "user-activity-service", "Kafka client id"},
  {"KAFKA_TOPIC", "user-activity-events", "topic the events go to and come from"},
  {"KAFKA_CONSUMER_GROUP", "user-activity-consumer-group", "consumer group"},
  {"KAFKA_DLQ_TOPIC", "<KAFKA_TOPIC>.dlq",
   "dead-letter topic for messages the consumer cannot store; empty: skip and log only"},
  {"KAFKA_PRODUCER_RETRIES", "3", "publish retries after the first attempt"},
  {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "500", "retry n waits n x this"},
  {"KAFKA_CONNECTION_TIMEOUT_MS", "10000", "bound on reaching the brokers, at start and per connection"},
  {"KAFKA_REQUEST_TIMEOUT_MS", "30000", "bound on one publish attempt's delivery"},
  {"KAFKA_SESSION_TIMEOUT_MS", "10000", "a consumer silent this long leaves the group"},
  {"LOG_LEVEL", "info", "trace, debug, info, warn, error"},
  {"LOG_FORMAT", "text", "`text`, or `json`: one JSON object a line"},
  {"HTTP_THREADS", "64", "HTTP worker threads kept warm"},
  {"HTTP_MAX_THREADS", "4096", "more started while every thread is busy, up to this"},
  {"BATCH_MAX_EVENTS", "500", "events in one POST /events/batch"},
  {"MAX_IN_FLIGHT", "50000", "events waiting for the broker before new requests get 503"},
  {"API_KEYS_FILE", "", "lines `NAME SCOPES SHA256HEX`; unset: every route open; re-read on SIGHUP"},
  {"RATE_LIMIT_PER_KEY", "0", "events per second per API key, 429 beyond; 0: no limit"},
  {"TLS_CERT_FILE", "", "PEM certificate (chain): serve HTTPS only, TLS 1.2 and later"},
  {"TLS_KEY_FILE", "", "PEM private key of TLS_CERT_FILE"},
  {"KAFKA_SECURITY_PROTOCOL", "plaintext", "plaintext, ssl, sasl_plaintext or sasl_ssl"},
  {"KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl_* protocols)"},
  {"KAFKA_SASL_USERNAME", "", "SASL user name (sasl_* protocols)"},
  {"KAFKA_SASL_PASSWORD", "", "SASL password (sasl_* protocols); never logged"},
  {"KAFKA_SSL_CA_LOCATION", "", "CA certificate file or directory (ssl protocols); unset: the system's"},
  {"CORS_ALLOWED_ORIGINS", "", "origins allowed to POST from a browser: scheme://host[:port],... or *"},
  {"STORE_URL", "memory", "`memory`, or a libpq URI postgresql://user:password@host:port/db?..."},
  {"STORE_RETENTION_DAYS", "0", "stored events older than this are deleted; 0: kept forever"},
  {"STORE_MEMORY_MAX_EVENTS", "1000000",
   "the memory store's bound: beyond it the oldest events leave the view and deduplication"},
};

[[noreturn]] void fail(const std::string& name, const std::string& value, const std::string& why) {
  throw config_error{name + "=\"" + value + "\" is invalid: " + why};
}

// A variable wrong for what the others say (missing, or set where it means nothing). The value is
// not repeated: it may be a secret.
[[noreturn]] void contradict(const std::string& name, const std::string& why) {
  throw config_error{name + " " + why};
}

long long parse_integer(const std::string& name, const std::string& value, long long min,
                        long long max) {
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(value.c_str(), &end, 10);
  bool whole = !value.empty() && end == value.c_str() + value.size()
               && value.find_first_of(" \t+") == std::string::npos;
  if (!whole || errno == ERANGE)
    fail(name, value, "expected a whole number");
  if (n < min || n > max)
    fail(name, value,
         "expected a number from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

std::string parse_word(const std::string& name, const std::string& value) {
  if (value.empty() || value.find_first_of(" \t\r\n") != std::string::npos)
    fail(name, value, "expected a non-empty value without spaces");
  return value;
}

bool is_port(const std::string& text) {
  return !text.empty() && text.size() <= 5
         && text.find_first_not_of("0123456789") == std::string::npos
         && std::stoi(text) >= 1 && std::stoi(text) <= 65535;
}

std::string parse_brokers(const std::string& name, const std::string& value) {
  if (value == "embedded")
    return value;
  std::stringstream list{value};
  std::string broker;
  int count = 0;
  while (std::getline(list, broker, ',')) {
    auto colon = broker.rfind(':');
    if (colon == std::string::npos || colon == 0 || !is_port(broker.substr(colon + 1)))
      fail(name, value, "expected `embedded` or host:port[,host:port...]");
    ++count;
  }
  if (count == 0 || value.back() == ',')
    fail(name, value, "expected `embedded` or host:port[,host:port...]");
  return value;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// KAFKA_SECURITY_PROTOCOL and the settings that go with it: each one set only where the protocol
// uses it, and every one it needs set, so that a typo cannot quietly send a password in the clear
// or leave it out.
kafka_security parse_kafka_security(const std::function<std::string(const char*)>& get,
                                    bool embedded) {
  kafka_security k;
  auto protocol = get("KAFKA_SECURITY_PROTOCOL");
  k.protocol = lower(protocol);
  if (k.protocol != "plaintext" && k.protocol != "ssl" && k.protocol != "sasl_plaintext"
      && k.protocol != "sasl_ssl")
    fail("KAFKA_SECURITY_PROTOCOL", protocol,
         "expected plaintext, ssl, sasl_plaintext or sasl_ssl");
  if (embedded && k.protocol != "plaintext")
    fail("KAFKA_SECURITY_PROTOCOL", protocol,
         "the embedded broker speaks plaintext only (set KAFKA_BROKERS to use it)");
  auto mechanism = get("KAFKA_SASL_MECHANISM");
  k.sasl_mechanism = mechanism;
  std::transform(k.sasl_mechanism.begin(), k.sasl_mechanism.end(), k.sasl_mechanism.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  k.sasl_username = get("KAFKA_SASL_USERNAME");
  k.sasl_password = get("KAFKA_SASL_PASSWORD");
  k.ssl_ca_location = get("KAFKA_SSL_CA_LOCATION");
  auto needs = "is required: KAFKA_SECURITY_PROTOCOL=" + k.protocol + " authenticates with SASL";
  auto needless = [&](const char* name) {
    contradict(name, "is set, but KAFKA_SECURITY_PROTOCOL=" + k.protocol + " does not use it");
  };
  if (k.sasl()) {
    if (k.sasl_mechanism.empty())
      contradict("KAFKA_SASL_MECHANISM", needs);
    if (k.sasl_mechanism != "PLAIN" && k.sasl_mechanism != "SCRAM-SHA-256"
        && k.sasl_mechanism != "SCRAM-SHA-512")
      fail("KAFKA_SASL_MECHANISM", mechanism, "expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    if (k.sasl_username.empty())
      contradict("KAFKA_SASL_USERNAME", needs);
    if (k.sasl_password.empty())
      contradict("KAFKA_SASL_PASSWORD", needs);
  } else {
    for (auto name : {"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"})
      if (!get(name).empty())
        needless(name);
  }
  if (!k.ssl_ca_location.empty()) {
    if (!k.ssl())
      needless("KAFKA_SSL_CA_LOCATION");
    if (access(k.ssl_ca_location.c_str(), R_OK) != 0)
      fail("KAFKA_SSL_CA_LOCATION", k.ssl_ca_location,
           std::string{"cannot read it: "} + std::strerror(errno));
  }
  return k;
}

// A comma-separated list of browser origins as browsers send them (scheme://host[:port], no
// path, no trailing slash), or "*" for any.
std::vector<std::string> parse_origins(const std::string& name, const std::string& value) {
  std::vector<std::string> origins;
  std::stringstream list{value};
  std::string origin;
  while (std::getline(list, origin, ',')) {
    origin.erase(0, origin.find_first_not_of(" \t"));
    origin.erase(origin.find_last_not_of(" \t") + 1);
    auto scheme_end = origin.find("://");
    bool well_formed =
      origin == "*"
      || ((origin.rfind("http://", 0) == 0 || origin.rfind("https://", 0) == 0)
          && origin.size() > scheme_end + 3
          && origin.find_first_of("/?#@ ", scheme_end + 3) == std::string::npos);
    if (!well_formed)
      fail(name, value, "expected origins such as https://app.example.com,http://localhost:8080, or *");
    origins.push_back(origin);
  }
  return origins;
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

// Whether `text` is percent-encoded properly and holds no spaces or control characters.
bool is_url_text(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c == 0x7f)
      return false;
    if (c == '%' && !(i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])))
      return false;
  }
  return true;
}

// The parts of a libpq connection URI: postgresql://[user[:password]@][host[:port][,...]][/db][?k=v&...]
struct url_parts {
  std::string_view userinfo, hosts, path, query;
};

// The parts of a URL of any scheme, or nothing if it has none.
std::optional<url_parts> split_any_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    return std::nullopt;
  auto rest = url.substr(scheme_end + 3);
  url_parts parts;
  auto query_at = rest.find('?');
  if (query_at != std::string_view::npos) {
    parts.query = rest.substr(query_at + 1);
    rest = rest.substr(0, query_at);
  }
  auto path_at = rest.find('/');
  if (path_at != std::string_view::npos) {
    parts.path = rest.substr(path_at + 1);
    rest = rest.substr(0, path_at);
  }
  auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    parts.userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  parts.hosts = rest;
  return parts;
}

// The parts of a libpq connection URI, or nothing if it is not one.
std::optional<url_parts> split_url(std::string_view url) {
  if (url.substr(0, 13) != "postgresql://" && url.substr(0, 11) != "postgres://")
    return std::nullopt;
  return split_any_url(url);
}

bool is_host_list(std::string_view hosts) {
  if (hosts.empty())
    return true; // libpq's default: the local socket
  size_t start = 0;
  while (true) {
    auto comma = hosts.find(',', start);
    auto host = hosts.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::string_view port;
    if (!host.empty() && host[0] == '[') { // an IPv6 address
      auto close = host.find(']');
      if (close == std::string_view::npos || close == 1)
        return false;
      auto after = host.substr(close + 1);
      if (!after.empty() && (after[0] != ':' || (port = after.substr(1)).empty()))
        return false;
    } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      if (port.empty())
        return false;
    }
    if (!port.empty() && !is_port(std::string{port}))
      return false;
    if (comma == std::string_view::npos)
      return true;
    start = comma + 1;
  }
}

std::string parse_store_url(const std::string& name, const std::string& value) {
  if (value == "memory")
    return value;
  const char* expected = "expected `memory` or postgresql://[user[:password]@]host[:port][/db][?param=value&...]";
  auto parts = split_url(value);
  if (!parts || !is_url_text(value) || !is_host_list(parts->hosts))
    fail(name, redact_url(value), expected);
  std::string_view query = parts->query;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (pair.find('=') == std::string_view::npos || pair.front() == '=')
      fail(name, redact_url(value), std::string{expected} + " (a parameter without a value)");
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return value;
}

// A Kafka topic name: what the broker accepts (letters, digits, '.', '_', '-'; at most 249).
std::string parse_topic(const std::string& name, const std::string& value) {
  if (value.empty() || value.size() > 249 || value == "." || value == ".."
      || value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
           != std::string::npos)
    fail(name, value, "expected a Kafka topic name: letters, digits, '.', '_', '-', at most 249");
  return value;
}

std::string trim(const std::string& s) {
  auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos)
    return {};
  auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

} // namespace

config load_config(const env_lookup& lookup) {
  auto get = [&](const char* name) -> std::string {
    for (auto& v : variables)
      if (std::string_view{v.name} == name)
        return lookup(name).value_or(v.fallback);
    throw std::logic_error{std::string{"unknown variable "} + name};
  };
  auto integer = [&](const char* name, long long min, long long max) {
    return parse_integer(name, get(name), min, max);
  };
  auto millis = [&](const char* name, long long min) {
    return std::chrono::milliseconds{integer(name, min, 24LL * 3600 * 1000)};
  };
  config c;
  c.host = parse_word("HOST", get("HOST"));
  c.port = static_cast<uint16_t>(integer("PORT", 0, 65535));
  c.app_env = get("APP_ENV");
  c.kafka_brokers = parse_brokers("KAFKA_BROKERS", get("KAFKA_BROKERS"));
  c.embedded_partitions = static_cast<int>(integer("KAFKA_EMBEDDED_PARTITIONS", 1, 1000));
  c.client_id = parse_word("KAFKA_CLIENT_ID", get("KAFKA_CLIENT_ID"));
  c.topic = parse_word("KAFKA_TOPIC", get("KAFKA_TOPIC"));
  c.consumer_group = parse_word("KAFKA_CONSUMER_GROUP", get("KAFKA_CONSUMER_GROUP"));
  // Unset: beside the topic. Set but empty: no dead-letter topic.
  if (auto dlq = lookup("KAFKA_DLQ_TOPIC"); !dlq)
    c.dlq_topic = c.topic + ".dlq";
  else if (dlq->empty())
    c.dlq_topic.clear();
  else if (parse_topic("KAFKA_DLQ_TOPIC", *dlq) == c.topic)
    fail("KAFKA_DLQ_TOPIC", *dlq, "the dead-letter topic must not be KAFKA_TOPIC itself");
  else
    c.dlq_topic = *dlq;
  c.producer_retries = static_cast<int>(integer("KAFKA_PRODUCER_RETRIES", 0, 100));
  c.retry_backoff = millis("KAFKA_PRODUCER_RETRY_BACKOFF_MS", 0);
  c.connection_timeout = millis("KAFKA_CONNECTION_TIMEOUT_MS", 1);
  c.request_timeout = millis("KAFKA_REQUEST_TIMEOUT_MS", 1);
  c.session_timeout = millis("KAFKA_SESSION_TIMEOUT_MS", 1000);
  c.log_level = get("LOG_LEVEL");
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info"
      && c.log_level != "warn" && c.log_level != "error")
    fail("LOG_LEVEL", c.log_level, "expected trace, debug, info, warn or error");
  auto format = get("LOG_FORMAT");
  if (format == "text")
    c.format = log_format::text;
  else if (format == "json")
    c.format = log_format::json;
  else
    fail("LOG_FORMAT", format, "expected text or json");
  c.http_threads = static_cast<int>(integer("HTTP_THREADS", 1, 1024));
  // A thread per open connection at most: the open-file limit bounds it anyway.
  c.http_max_threads = static_cast<int>(integer("HTTP_MAX_THREADS", c.http_threads, 65536));
  c.batch_max_events = static_cast<size_t>(integer("BATCH_MAX_EVENTS", 1, 100000));
  c.max_in_flight = static_cast<size_t>(integer("MAX_IN_FLIGHT", 1, 100'000'000));
  c.cors_allowed_origins = parse_origins("CORS_ALLOWED_ORIGINS", get("CORS_ALLOWED_ORIGINS"));
  if (c.max_in_flight < c.batch_max_events)
    fail("MAX_IN_FLIGHT", std::to_string(c.max_in_flight),
         "expected at least BATCH_MAX_EVENTS (" + std::to_string(c.batch_max_events)
           + "), or no batch could ever be taken");
  c.api_keys_file = get("API_KEYS_FILE");
  c.rate_limit_per_key = static_cast<int>(integer("RATE_LIMIT_PER_KEY", 0, 10'000'000));
  if (c.rate_limit_per_key > 0 && c.api_keys_file.empty())
    contradict("RATE_LIMIT_PER_KEY", "needs API_KEYS_FILE: the limit is per API key");
  c.tls_cert_file = get("TLS_CERT_FILE");
  c.tls_key_file = get("TLS_KEY_FILE");
  if (c.tls_cert_file.empty() && !c.tls_key_file.empty())
    contradict("TLS_CERT_FILE", "is required with TLS_KEY_FILE");
  if (!c.tls_cert_file.empty() && c.tls_key_file.empty())
    contradict("TLS_KEY_FILE", "is required with TLS_CERT_FILE");
  c.kafka_auth = parse_kafka_security(get, c.embedded_broker());
  c.store_url = parse_store_url("STORE_URL", get("STORE_URL"));
  c.store_retention_days = static_cast<int>(integer("STORE_RETENTION_DAYS", 0, 36500));
  c.store_memory_max_events =
    static_cast<uint64_t>(integer("STORE_MEMORY_MAX_EVENTS", 1, 1'000'000'000));
  return c;
}

std::string redact_url(const std::string& url) {
  // Every place a password can be: after user: in a URL, and as a password= setting anywhere
  // (in the query, or in a keyword=value string that is no URL at all).
  std::vector<std::pair<size_t, size_t>> secrets; // where, how long
  if (auto parts = split_any_url(url)) {
    if (auto colon = parts->userinfo.find(':'); colon != std::string_view::npos)
      secrets.emplace_back(static_cast<size_t>(parts->userinfo.data() - url.data()) + colon + 1,
                           parts->userinfo.size() - colon - 1);
  }
  for (auto at = url.find("password="); at != std::string::npos; at = url.find("password=", at + 1)) {
    auto start = at + 9;
    auto end = url.find_first_of("& \t", start);
    secrets.emplace_back(start, (end == std::string::npos ? url.size() : end) - start);
  }
  std::sort(secrets.begin(), secrets.end());
  std::string shown = url;
  // From the end backwards, so that the places found in `url` still hold in `shown`.
  for (auto it = secrets.rbegin(); it != secrets.rend(); ++it)
    shown.replace(it->first, it->second, "***");
  return shown;
}

std::string url_hosts(const std::string& url) {
  auto parts = split_url(url);
  if (!parts)
    return url;
  if (!parts->hosts.empty())
    return std::string{parts->hosts};
  for (std::string_view query = parts->query; !query.empty();) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (pair.substr(0, 5) == "host=")
      return std::string{pair.substr(5)};
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
  }
  return "localhost";
}

std::map<std::string, std::string> parse_dotenv(const std::string& text) {
  std::map<std::string, std::string> result;
  std::stringstream lines{text};
  std::string line;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#')
      continue;
    if (line.rfind("export ", 0) == 0)
      line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    } else if (auto hash = value.find(" #"); hash != std::string::npos) {
      value = trim(value.substr(0, hash)); // an inline comment after an unquoted value
    }
    result[key] = value;
  }
  return result;
}

env_lookup process_environment(const std::string& dotenv_path) {
  std::map<std::string, std::string> file_values;
  if (std::ifstream in{dotenv_path}) {
    std::stringstream text;
    text << in.rdbuf();
    file_values = parse_dotenv(text.str());
  }
  return [file_values](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str()))
      return std::string{value};
    if (auto it = file_values.find(name); it != file_values.end())
      return it->second;
    return std::nullopt;
  };
}

std::string config_table() {
  std::string out = "Configuration (environment variables, after a .env file in the working "
                    "directory; the real environment wins):\n\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-33s %-30s %s\n", "variable", "default", "meaning");
  out += line;
  for (auto& v : variables) {
    std::snprintf(line, sizeof line, "  %-33s %-30s %s\n", v.name,
                  *v.fallback ? v.fallback : "(none)", v.meaning);
    out += line;
  }
  return out;
}

} // namespace uas
