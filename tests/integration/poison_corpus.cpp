#include "poison_corpus.hpp"

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "service_process.hpp"

namespace uas::testing {

namespace {

using json = nlohmann::json;

const std::string any_id = "00000000-0000-4000-8000-000000000000";

std::string with(const std::string& field_json) {
  // A valid event with one field overridden or added.
  auto e = json::parse(event_text(any_id, "user", "LOGIN"));
  auto patch = json::parse(field_json);
  for (auto& [k, v] : patch.items())
    e[k] = v;
  return e.dump();
}

std::string without(const std::string& field) {
  auto e = json::parse(event_text(any_id, "user", "LOGIN"));
  e.erase(field);
  return e.dump();
}

// A shell word holding `text` as it is.
std::string quoted(const std::string& text) {
  std::string q = "'";
  for (char c : text)
    q += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
  return q + "'";
}

} // namespace

std::vector<topic_message> poison_corpus() {
  const std::string malformed = "malformed", invalid = "invalid";
  return {
    {"not JSON", "this is not json", malformed, {}},
    {"JSON with bytes that are not UTF-8", "{\"eventId\":\"\xff\xfe\xfd\",\"userId\":\"u\"}",
     malformed, {}},
    {"raw bytes, not UTF-8", std::string{"\xff\xfe\x00\x01raw\x80", 8}, malformed, {}},
    {"an array", "[1,2,3]", malformed, {}},
    {"a string", "\"LOGIN\"", malformed, {}},
    {"a number", "12345", malformed, {}},
    {"JSON null", "null", malformed, {}},
    {"a null value", std::nullopt, malformed, {}},
    {"missing eventId", without("eventId"), invalid, {}},
    {"missing userId", without("userId"), invalid, {}},
    {"missing eventType", without("eventType"), invalid, {}},
    {"missing timestamp", without("timestamp"), invalid, {}},
    {"eventId of the wrong type", with(R"({"eventId":42})"), invalid, {}},
    {"userId of the wrong type", with(R"({"userId":{"id":1}})"), invalid, {}},
    {"empty eventId", with(R"({"eventId":""})"), invalid, {}},
    {"eventId that is not a UUID", with(R"({"eventId":"not-a-uuid"})"), invalid, {}},
    {"empty userId", with(R"({"userId":""})"), invalid, {}},
    {"unknown eventType", with(R"({"eventType":"SIGNUP"})"), invalid, {}},
    {"null payload", with(R"({"payload":null})"), invalid, {}},
    {"array payload", with(R"({"payload":[1,2]})"), invalid, {}},
    {"hundreds of kilobytes",
     with(R"({"userId":")" + std::string(400'000, 'x') + "\", \"eventType\": 7}"), invalid, {}},
    {"deep nesting", std::string(200'000, '[') + std::string(200'000, ']'), malformed, {}},
    {"larger than any POST can make", with(R"({"payload":{"blob":")" + std::string(1'200'000, 'x')
                                           + "\"}}"),
     "too-large", {}},
    {"schema version 2", event_text("20000000-0000-4000-8000-000000000002", "v2", "LOGIN"),
     "unknown-schema", {{"schema-version", "2"}}},
    {"a schema version no one wrote", event_text("20000000-0000-4000-8000-000000000003", "vx", "LOGIN"),
     "unknown-schema", {{"schema-version", "banana"}, {"origin", "kcat"}}},
  };
}

topic_message valid_event(const std::string& id) {
  return {"a valid event", event_text(id, "user-" + id.substr(0, 8), "LOGIN"), "", {}};
}

bool produce_in_order(const std::string& broker, const std::vector<topic_message>& messages,
                      const std::string& key, const std::string& topic) {
  char tmpl[] = "/tmp/uas-messages-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  bool ok = true;
  for (size_t i = 0; i < messages.size() && ok; ++i) {
    auto& m = messages[i];
    if (!m.value) {
      std::string headers;
      for (auto& [name, value] : m.headers)
        headers += "('" + name + "', b'" + value + "'),";
      ok = run_command("/usr/bin/python3 -c \"from kafka import KafkaProducer\n"
                       "p = KafkaProducer(bootstrap_servers='" + broker + "', api_version=(2, 5, 0))\n"
                       "p.send('" + topic + "', key=b'" + key + "', value=None, partition=0, headers=["
                       + headers + "]).get(timeout=10)\"")
             .status
           == 0;
      continue;
    }
    // kcat sends each file it is given as one message, bytes as they are.
    auto path = dir + "/" + std::to_string(i);
    std::ofstream{path, std::ios::binary} << *m.value;
    std::string kcat = "kcat -b " + broker + " -P -t " + topic + " -p 0 -k " + quoted(key)
                       + " -X message.max.bytes=4000000";
    for (auto& [name, value] : m.headers)
      kcat += " -H " + quoted(name + "=" + value);
    ok = run_command(kcat + " " + path).status == 0;
  }
  run_command("rm -rf " + dir);
  return ok;
}

} // namespace uas::testing
