// Configuration: every default, every variable taken, every bad value refused by name, and the
// .env file under the real environment.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include "core/config.hpp"

using namespace uas;
using vars = std::map<std::string, std::string>;

namespace {

config load(const vars& values) {
  return load_config([&](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end())
      return std::nullopt;
    return it->second;
  });
}

// The message a bad value is refused with; fails the test if it is taken.
std::string refusal(const std::string& name, const std::string& value) {
  try {
    load({{name, value}});
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL(name << "=" << value << " was accepted");
  return {};
}

} // namespace

TEST_CASE("with nothing set, every default from the table") {
  auto c = load({});
  CHECK(c.port == 3000);
  CHECK(c.app_env == "development");
  CHECK(c.kafka_brokers == "embedded");
  CHECK(c.embedded_broker());
  CHECK(c.embedded_partitions == 3);
  CHECK(c.client_id == "user-activity-service");
  CHECK(c.topic == "user-activity-events");
  CHECK(c.consumer_group == "user-activity-consumer-group");
  CHECK(c.producer_retries == 3);
  CHECK(c.retry_backoff == std::chrono::milliseconds{500});
  CHECK(c.connection_timeout == std::chrono::milliseconds{10000});
  CHECK(c.request_timeout == std::chrono::milliseconds{30000});
  CHECK(c.log_level == "info");
  CHECK(c.format == log_format::text);
  CHECK(c.http_threads == 64);
  CHECK(c.http_max_threads == 4096);
  CHECK(c.host == "0.0.0.0");
}

TEST_CASE("every variable is taken") {
  auto c = load({{"PORT", "8080"},
                 {"APP_ENV", "production"},
                 {"KAFKA_BROKERS", "kafka-1:9092,kafka-2:9093"},
                 {"KAFKA_EMBEDDED_PARTITIONS", "12"},
                 {"KAFKA_CLIENT_ID", "me"},
                 {"KAFKA_TOPIC", "events"},
                 {"KAFKA_CONSUMER_GROUP", "group-b"},
                 {"KAFKA_PRODUCER_RETRIES", "0"},
                 {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "250"},
                 {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"},
                 {"KAFKA_REQUEST_TIMEOUT_MS", "5000"},
                 {"KAFKA_SESSION_TIMEOUT_MS", "3000"},
                 {"LOG_LEVEL", "debug"},
                 {"LOG_FORMAT", "json"},
                 {"HTTP_THREADS", "8"},
                 {"HTTP_MAX_THREADS", "100"},
                 {"HOST", "127.0.0.1"}});
  CHECK(c.host == "127.0.0.1");
  CHECK(c.port == 8080);
  CHECK(c.app_env == "production");
  CHECK(c.kafka_brokers == "kafka-1:9092,kafka-2:9093");
  CHECK_FALSE(c.embedded_broker());
  CHECK(c.embedded_partitions == 12);
  CHECK(c.client_id == "me");
  CHECK(c.topic == "events");
  CHECK(c.consumer_group == "group-b");
  CHECK(c.producer_retries == 0);
  CHECK(c.retry_backoff == std::chrono::milliseconds{250});
  CHECK(c.connection_timeout == std::chrono::milliseconds{2000});
  CHECK(c.request_timeout == std::chrono::milliseconds{5000});
  CHECK(c.session_timeout == std::chrono::milliseconds{3000});
  CHECK(c.log_level == "debug");
  CHECK(c.format == log_format::json);
  CHECK(c.http_threads == 8);
  CHECK(c.http_max_threads == 100);
}

TEST_CASE("a value that does not parse is refused, naming the variable") {
  std::vector<std::pair<std::string, std::string>> bad = {
    {"PORT", "abc"}, {"PORT", "70000"}, {"PORT", "-1"}, {"PORT", ""}, {"PORT", "80 80"},
    {"PORT", "3000x"}, {"KAFKA_EMBEDDED_PARTITIONS", "0"}, {"KAFKA_PRODUCER_RETRIES", "-1"},
    {"KAFKA_PRODUCER_RETRIES", "x"}, {"KAFKA_PRODUCER_RETRY_BACKOFF_MS", "1.5"},
    {"KAFKA_CONNECTION_TIMEOUT_MS", "0"}, {"KAFKA_REQUEST_TIMEOUT_MS", "abc"},
    {"KAFKA_SESSION_TIMEOUT_MS", "999"},
    {"LOG_LEVEL", "verbose"}, {"LOG_FORMAT", "xml"}, {"HTTP_THREADS", "0"},
    {"KAFKA_BROKERS", "nohostport"}, {"KAFKA_BROKERS", "host:notaport"}, {"KAFKA_BROKERS", "host:1,"},
    {"KAFKA_BROKERS", ":9092"}, {"KAFKA_BROKERS", ""}, {"KAFKA_TOPIC", "two words"},
    {"KAFKA_CONSUMER_GROUP", ""}, {"KAFKA_PRODUCER_RETRIES", "99999999999999999999"},
    {"HOST", ""}, {"HOST", "local host"}, {"HTTP_MAX_THREADS", "0"}, {"HTTP_MAX_THREADS", "63"},
  };
  for (auto& [name, value] : bad) {
    INFO(name << "=" << value);
    CHECK_THAT(refusal(name, value), Catch::StartsWith(name + "=\"" + value + "\""));
  }
}

TEST_CASE(".env lines") {
  auto values = parse_dotenv(R"(# a comment

PORT=4000
export APP_ENV=staging
  KAFKA_TOPIC = spaced   
LOG_LEVEL="debug"
KAFKA_CLIENT_ID='single quoted # not a comment'
APP_NOTE=value # a comment after it
NOT_A_LINE
)");
  CHECK(values == vars{{"PORT", "4000"},
                       {"APP_ENV", "staging"},
                       {"KAFKA_TOPIC", "spaced"},
                       {"LOG_LEVEL", "debug"},
                       {"KAFKA_CLIENT_ID", "single quoted # not a comment"},
                       {"APP_NOTE", "value"}});
}

TEST_CASE("the real environment wins over .env") {
  char path[] = "/tmp/uas-dotenv-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream{path} << "UAS_TEST_BOTH=from-file\nUAS_TEST_FILE_ONLY=file\n";
  setenv("UAS_TEST_BOTH", "from-environment", 1);
  unsetenv("UAS_TEST_FILE_ONLY");
  auto lookup = process_environment(path);
  CHECK(lookup("UAS_TEST_BOTH") == std::optional<std::string>{"from-environment"});
  CHECK(lookup("UAS_TEST_FILE_ONLY") == std::optional<std::string>{"file"});
  CHECK(lookup("UAS_TEST_NOWHERE") == std::nullopt);
  unsetenv("UAS_TEST_BOTH");
  std::remove(path);
  // No .env file at all is fine.
  CHECK(process_environment("/nonexistent/.env")("UAS_TEST_FILE_ONLY") == std::nullopt);
}

TEST_CASE("the table printed by --help lists every variable with its default") {
  auto table = config_table();
  for (auto name : {"PORT", "APP_ENV", "KAFKA_BROKERS", "KAFKA_EMBEDDED_PARTITIONS", "KAFKA_CLIENT_ID",
                    "KAFKA_TOPIC", "KAFKA_CONSUMER_GROUP", "KAFKA_PRODUCER_RETRIES",
                    "KAFKA_PRODUCER_RETRY_BACKOFF_MS", "KAFKA_CONNECTION_TIMEOUT_MS",
                    "KAFKA_REQUEST_TIMEOUT_MS", "KAFKA_SESSION_TIMEOUT_MS", "LOG_LEVEL", "LOG_FORMAT",
                    "HTTP_THREADS", "HOST", "HTTP_MAX_THREADS"})
    CHECK_THAT(table, Catch::Contains(name));
  CHECK_THAT(table, Catch::Contains("user-activity-consumer-group"));
}

TEST_CASE("batch size and the in-flight bound: defaults, values, and a bound no batch fits under") {
  auto c = load({});
  CHECK(c.batch_max_events == 500);
  CHECK(c.max_in_flight == 50000);
  c = load({{"BATCH_MAX_EVENTS", "20"}, {"MAX_IN_FLIGHT", "20"}});
  CHECK(c.batch_max_events == 20);
  CHECK(c.max_in_flight == 20);
  CHECK_THAT(refusal("BATCH_MAX_EVENTS", "0"), Catch::Contains("BATCH_MAX_EVENTS"));
  CHECK_THAT(refusal("MAX_IN_FLIGHT", "lots"), Catch::Contains("MAX_IN_FLIGHT"));
  CHECK_THAT(refusal("MAX_IN_FLIGHT", "499"), Catch::Contains("at least BATCH_MAX_EVENTS (500)"));
  auto table = config_table();
  CHECK_THAT(table, Catch::Contains("BATCH_MAX_EVENTS") && Catch::Contains("MAX_IN_FLIGHT"));
}

TEST_CASE("security settings: off by default") {
  auto c = load({});
  CHECK(c.api_keys_file.empty());
  CHECK(c.rate_limit_per_key == 0);
  CHECK_FALSE(c.tls());
  CHECK(c.kafka_auth.protocol == "plaintext");
  CHECK_FALSE(c.kafka_auth.sasl());
  CHECK_FALSE(c.kafka_auth.ssl());
}

TEST_CASE("security settings are taken") {
  auto c = load({{"API_KEYS_FILE", "/etc/uas/keys"},
                 {"RATE_LIMIT_PER_KEY", "250"},
                 {"TLS_CERT_FILE", "/etc/uas/cert.pem"},
                 {"TLS_KEY_FILE", "/etc/uas/key.pem"},
                 {"KAFKA_BROKERS", "kafka:9093"},
                 {"KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
                 {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"},
                 {"KAFKA_SASL_USERNAME", "svc"},
                 {"KAFKA_SASL_PASSWORD", "pw"},
                 {"KAFKA_SSL_CA_LOCATION", "/etc/ssl/certs"}});
  CHECK(c.api_keys_file == "/etc/uas/keys");
  CHECK(c.rate_limit_per_key == 250);
  CHECK(c.tls());
  CHECK(c.tls_cert_file == "/etc/uas/cert.pem");
  CHECK(c.tls_key_file == "/etc/uas/key.pem");
  CHECK(c.kafka_auth.protocol == "sasl_ssl");
  CHECK(c.kafka_auth.sasl());
  CHECK(c.kafka_auth.ssl());
  CHECK(c.kafka_auth.sasl_mechanism == "SCRAM-SHA-256");
  CHECK(c.kafka_auth.sasl_username == "svc");
  CHECK(c.kafka_auth.sasl_password == "pw");
  CHECK(c.kafka_auth.ssl_ca_location == "/etc/ssl/certs");
}

TEST_CASE("contradictory or incomplete security settings are refused, naming the variable") {
  const vars sasl = {{"KAFKA_BROKERS", "kafka:9093"},
                     {"KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"},
                     {"KAFKA_SASL_MECHANISM", "PLAIN"},
                     {"KAFKA_SASL_USERNAME", "svc"},
                     {"KAFKA_SASL_PASSWORD", "hunter2-secret"}};
  auto without = [&](const std::string& name) {
    auto v = sasl;
    v.erase(name);
    return v;
  };
  auto with = [&](vars v, const std::string& name, const std::string& value) {
    v[name] = value;
    return v;
  };
  const vars plain = {{"KAFKA_BROKERS", "kafka:9092"}};
  std::vector<std::pair<vars, std::string>> bad = {
    {without("KAFKA_SASL_MECHANISM"), "KAFKA_SASL_MECHANISM is required"},
    {without("KAFKA_SASL_USERNAME"), "KAFKA_SASL_USERNAME is required"},
    {without("KAFKA_SASL_PASSWORD"), "KAFKA_SASL_PASSWORD is required"},
    {with(sasl, "KAFKA_SASL_MECHANISM", "GSSAPI"), "KAFKA_SASL_MECHANISM=\"GSSAPI\" is invalid"},
    {with(sasl, "KAFKA_SECURITY_PROTOCOL", "tls"), "KAFKA_SECURITY_PROTOCOL=\"tls\" is invalid"},
    {with(plain, "KAFKA_SASL_PASSWORD", "hunter2-secret"), "KAFKA_SASL_PASSWORD is set, but"},
    {with(plain, "KAFKA_SASL_USERNAME", "svc"), "KAFKA_SASL_USERNAME is set, but"},
    {with(with(plain, "KAFKA_SECURITY_PROTOCOL", "ssl"), "KAFKA_SASL_MECHANISM", "PLAIN"),
     "KAFKA_SASL_MECHANISM is set, but KAFKA_SECURITY_PROTOCOL=ssl"},
    {with(sasl, "KAFKA_SSL_CA_LOCATION", "/etc/ssl/certs"),
     "KAFKA_SSL_CA_LOCATION is set, but KAFKA_SECURITY_PROTOCOL=sasl_plaintext"},
    {with(with(plain, "KAFKA_SECURITY_PROTOCOL", "ssl"), "KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"),
     "KAFKA_SSL_CA_LOCATION=\"/nonexistent/ca.pem\" is invalid: cannot read it"},
    {{{"KAFKA_SECURITY_PROTOCOL", "ssl"}}, "KAFKA_SECURITY_PROTOCOL=\"ssl\" is invalid: the embedded broker"},
    {{{"RATE_LIMIT_PER_KEY", "10"}}, "RATE_LIMIT_PER_KEY needs API_KEYS_FILE"},
    {{{"RATE_LIMIT_PER_KEY", "-1"}}, "RATE_LIMIT_PER_KEY=\"-1\" is invalid"},
    {{{"TLS_CERT_FILE", "/etc/uas/cert.pem"}}, "TLS_KEY_FILE is required with TLS_CERT_FILE"},
    {{{"TLS_KEY_FILE", "/etc/uas/key.pem"}}, "TLS_CERT_FILE is required with TLS_KEY_FILE"},
  };
  for (auto& [values, message] : bad) {
    INFO(message);
    try {
      load(values);
      FAIL("accepted");
    } catch (const config_error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith(message));
      CHECK_THAT(e.what(), !Catch::Contains("hunter2")); // a secret is never repeated
    }
  }
}
TEST_CASE("the store's settings: memory by default, a PostgreSQL URI, retention and the memory bound") {
  auto c = load({});
  CHECK(c.memory_store());
  CHECK(c.store_retention_days == 0);
  CHECK(c.store_memory_max_events == 1'000'000);
  c = load({{"STORE_URL", "postgresql://app:pw@db-1:5432,db-2/events?sslmode=require&connect_timeout=5"},
            {"STORE_RETENTION_DAYS", "30"},
            {"STORE_MEMORY_MAX_EVENTS", "500"}});
  CHECK_FALSE(c.memory_store());
  CHECK(c.store_retention_days == 30);
  CHECK(c.store_memory_max_events == 500);
  for (auto url : {"postgres://db/events", "postgresql://", "postgresql:///events?host=/var/run/postgresql",
                   "postgresql://[::1]:5432/events", "postgresql://us%40er@db"})
    CHECK(load({{"STORE_URL", url}}).store_url == url);
}

TEST_CASE("a STORE_URL that does not parse is refused without its password") {
  for (std::string url : {"mysql://root:s3cret@db/x", "postgresql://root:s3cret@db:99999/x",
                          "postgresql://root:s3cret@db:/x", "postgresql://root:s3cret@db/x?sslmode",
                          "postgresql://root:s3cret@db/my db", "postgresql://root:s3cret@db/%zz",
                          "host=db password=s3cret", "", "Memory", "postgresql://root:s3cret@[::1/x"}) {
    INFO(url);
    auto why = refusal("STORE_URL", url);
    CHECK_THAT(why, Catch::StartsWith("STORE_URL="));
    CHECK(why.find("s3cret") == std::string::npos);
  }
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
         {"STORE_RETENTION_DAYS", "-1"}, {"STORE_RETENTION_DAYS", "1.5"},
         {"STORE_MEMORY_MAX_EVENTS", "0"}, {"STORE_MEMORY_MAX_EVENTS", "many"}}) {
    INFO(name << "=" << value);
    CHECK_THAT(refusal(name, value), Catch::StartsWith(name + "=\"" + value + "\""));
  }
}

TEST_CASE("a database URL is shown with its password masked, and its hosts named") {
  CHECK(redact_url("postgresql://app:s3cret@db:5432/events") == "postgresql://app:***@db:5432/events");
  CHECK(redact_url("postgresql://app@db/events?password=s3cret&sslmode=require")
        == "postgresql://app@db/events?password=***&sslmode=require");
  CHECK(redact_url("postgresql://db/events") == "postgresql://db/events");
  CHECK(redact_url("memory") == "memory");
  CHECK(url_hosts("postgresql://app:s3cret@db-1:5432,db-2/events") == "db-1:5432,db-2");
  CHECK(url_hosts("postgresql:///events?host=/run/postgresql") == "/run/postgresql");
}
