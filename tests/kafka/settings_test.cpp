// What librdkafka is given for KAFKA_SECURITY_PROTOCOL and the SASL and TLS settings: the same for
// every client of the service, and accepted by this librdkafka build.
#include <catch2/catch.hpp>

#include <map>

#include "core/config.hpp"
#include "kafka/settings.hpp"

using namespace uas;

namespace {

config load(const std::map<std::string, std::string>& values) {
  return load_config([&](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional<std::string>{it->second};
  });
}

std::map<std::string, std::string> as_map(const kafka::settings& s) {
  return {s.begin(), s.end()};
}

const std::map<std::string, std::string> sasl_ssl = {
  {"KAFKA_BROKERS", "kafka-1:9093"},
  {"KAFKA_SECURITY_PROTOCOL", "SASL_SSL"},
  {"KAFKA_SASL_MECHANISM", "scram-sha-512"},
  {"KAFKA_SASL_USERNAME", "events-service"},
  {"KAFKA_SASL_PASSWORD", "s3cret pass phrase"},
  {"KAFKA_SSL_CA_LOCATION", "/etc/ssl/certs"},
};

} // namespace

TEST_CASE("SASL over TLS: protocol, mechanism, credentials and CA go to every client alike") {
  auto cfg = load(sasl_ssl);
  for (auto& s : {kafka::producer_settings(cfg, "kafka-1:9093"),
                  kafka::consumer_settings(cfg, "kafka-1:9093"),
                  kafka::dead_letter_settings(cfg, "kafka-1:9093")}) {
    auto m = as_map(s);
    CHECK(m["security.protocol"] == "sasl_ssl");
    CHECK(m["sasl.mechanism"] == "SCRAM-SHA-512");
    CHECK(m["sasl.username"] == "events-service");
    CHECK(m["sasl.password"] == "s3cret pass phrase");
    CHECK(m["ssl.ca.location"] == "/etc/ssl/certs");
  }
}

TEST_CASE("by default the clients speak plaintext and are given no SASL or TLS setting") {
  auto m = as_map(kafka::producer_settings(load({}), "127.0.0.1:9092"));
  CHECK(m["security.protocol"] == "plaintext");
  for (auto key : {"sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location"})
    CHECK(m.count(key) == 0);
}

TEST_CASE("TLS without SASL: the CA only") {
  auto m = as_map(kafka::consumer_settings(
    load({{"KAFKA_BROKERS", "k:9093"}, {"KAFKA_SECURITY_PROTOCOL", "ssl"}}), "k:9093"));
  CHECK(m["security.protocol"] == "ssl");
  CHECK(m.count("ssl.ca.location") == 0); // librdkafka then trusts the system's CAs
  CHECK(m.count("sasl.mechanism") == 0);
}

TEST_CASE("librdkafka takes every protocol and mechanism the configuration allows") {
  for (auto protocol : {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"})
    for (auto mechanism : {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}) {
      auto values = sasl_ssl;
      values["KAFKA_SECURITY_PROTOCOL"] = protocol;
      std::string p = protocol;
      if (p.rfind("sasl_", 0) == 0)
        values["KAFKA_SASL_MECHANISM"] = mechanism;
      else
        for (auto name : {"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"})
          values.erase(name);
      if (p == "plaintext" || p == "sasl_plaintext")
        values.erase("KAFKA_SSL_CA_LOCATION");
      INFO(protocol << " " << mechanism);
      auto cfg = load(values);
      // A client is made (no connection is needed for that): this build of librdkafka has the
      // TLS and SASL support the settings ask for.
      rd_kafka_t* client = kafka::make_client(
        RD_KAFKA_PRODUCER, kafka::make_conf(kafka::producer_settings(cfg, "127.0.0.1:1")));
      CHECK(client != nullptr);
      rd_kafka_destroy(client);
    }
}
