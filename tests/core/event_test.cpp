// The event rules: request validation (every problem in one answer), message validation, the
// JSON the service writes, and the formats of eventId and timestamp.
#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>

#include "core/event.hpp"

using namespace uas;
using json = nlohmann::json;

namespace {

std::set<std::string> fields_of(const parse_result& r) {
  std::set<std::string> fields;
  for (auto& e : r.errors)
    fields.insert(e.field);
  return fields;
}

// The one problem a request has, by field.
std::string only_problem(const std::string& body) {
  auto r = parse_event_request(body);
  INFO(body);
  REQUIRE(r.errors.size() == 1);
  return r.errors[0].field;
}

const std::string valid_message =
  R"({"eventId":"3b6f1c4e-0000-4000-8000-000000000001","userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z","payload":{"a":1}})";

json patched(const json& patch) {
  auto e = json::parse(valid_message);
  for (auto& [k, v] : patch.items())
    e[k] = v;
  return e;
}

} // namespace

TEST_CASE("a valid request becomes an event with a fresh eventId and timestamp") {
  auto r = parse_event_request(R"({"userId":"alice","eventType":"PRODUCT_VIEW","payload":{"productId":"p-1","n":[1,2]}})");
  REQUIRE(r.ok());
  CHECK(r.value.user_id == "alice");
  CHECK(r.value.event_type == "PRODUCT_VIEW");
  CHECK(json::parse(r.value.payload) == json{{"productId", "p-1"}, {"n", {1, 2}}});
  CHECK(is_uuid(r.value.event_id));
  CHECK(r.value.event_id[14] == '4'); // version 4
  CHECK(std::string{"89ab"}.find(r.value.event_id[19]) != std::string::npos); // RFC 4122 variant
  CHECK(is_utc_timestamp(r.value.timestamp));
  CHECK(r.value.timestamp.size() == 24); // milliseconds

  auto again = parse_event_request(R"({"userId":"alice","eventType":"PRODUCT_VIEW"})");
  REQUIRE(again.ok());
  CHECK(again.value.payload == "{}");
  CHECK(again.value.event_id != r.value.event_id);
}

TEST_CASE("the timestamp is now, in UTC") {
  auto r = parse_event_request(R"({"userId":"a","eventType":"LOGIN"})");
  REQUIRE(r.ok());
  std::tm tm{};
  REQUIRE(strptime(r.value.timestamp.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  auto stamped = timegm(&tm);
  auto now = std::time(nullptr);
  CHECK(std::abs(now - stamped) <= 2);
}

TEST_CASE("each validation rule on its own") {
  CHECK(only_problem(R"({"eventType":"LOGIN"})") == "userId");
  CHECK(only_problem(R"({"userId":42,"eventType":"LOGIN"})") == "userId");
  CHECK(only_problem(R"({"userId":"","eventType":"LOGIN"})") == "userId");
  CHECK(only_problem(R"({"userId":"   ","eventType":"LOGIN"})") == "userId");
  CHECK(only_problem(R"({"userId":null,"eventType":"LOGIN"})") == "userId");
  CHECK(only_problem(R"({"userId":"u"})") == "eventType");
  CHECK(only_problem(R"({"userId":"u","eventType":"SIGNUP"})") == "eventType");
  CHECK(only_problem(R"({"userId":"u","eventType":"login"})") == "eventType");
  CHECK(only_problem(R"({"userId":"u","eventType":["LOGIN"]})") == "eventType");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","payload":null})") == "payload");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","payload":[1]})") == "payload");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","payload":"x"})") == "payload");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","eventId":"mine"})") == "eventId");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","timestamp":"2999-01-01T00:00:00Z"})") == "timestamp");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","timestamp":"2020-01-01 00:00:00"})") == "timestamp");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","timestamp":1700000000})") == "timestamp");
}

TEST_CASE("a userId is at most 256 characters, counted as characters rather than bytes") {
  auto request = [](const std::string& user) {
    return parse_event_request(R"({"userId":")" + user + R"(","eventType":"LOGIN"})");
  };
  CHECK(request(std::string(256, 'u')).ok());
  // 256 characters of two bytes each.
  std::string accented;
  for (int i = 0; i < 256; ++i)
    accented += "\u00e9";
  CHECK(request(accented).ok());
  auto r = request(std::string(257, 'u'));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "userId");
  CHECK(r.errors[0].message == "userId must be at most 256 characters, not 257");
  CHECK(request(std::string(1024 * 1024, 'u')).errors.at(0).field == "userId");
  // U+0000, which PostgreSQL's text cannot hold: the store would refuse the event after its 201.
  auto nul = parse_event_request(R"({"userId":"a\u0000b","eventType":"LOGIN"})");
  REQUIRE(nul.errors.size() == 1);
  CHECK(nul.errors[0].field == "userId");
  CHECK(nul.errors[0].message == "userId must not contain the character U+0000");
  // The same rule for an event read from the topic, whoever produced it.
  auto message = parse_event_message(
    R"({"eventId":"3b6f1c4e-0000-4000-8000-000000000001","userId":")" + std::string(300, 'u')
    + R"(","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z","payload":{}})");
  REQUIRE(message.errors.size() == 1);
  CHECK(message.errors[0].field == "userId");
}

TEST_CASE("every problem of a request is listed at once") {
  auto r = parse_event_request(R"({"userId":"","eventType":"NOPE","payload":[],"extra":1,"more":2})");
  CHECK(fields_of(r) == std::set<std::string>{"userId", "eventType", "payload", "extra", "more"});
  for (auto& e : r.errors)
    CHECK_FALSE(e.message.empty());
  CHECK(fields_of(parse_event_request("{}")) == std::set<std::string>{"userId", "eventType"});
}

TEST_CASE("a body that is not a JSON object is one problem with the body") {
  for (std::string body : {"", "not json", "{\"userId\":", "[]", "[{\"userId\":\"u\"}]", "\"text\"",
                           "42", "null", "true", "{} {}"}) {
    INFO(body);
    CHECK(only_problem(body) == "body");
  }
}

TEST_CASE("hostile bodies are refused without harm") {
  CHECK(only_problem(std::string(10000, '[')) == "body");
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","payload":)" + std::string(100000, '{')) == "body");
  // Invalid UTF-8 inside a string.
  CHECK(only_problem("{\"userId\":\"\xff\xfe\",\"eventType\":\"LOGIN\"}") == "body");
  // Nesting within the limit is fine.
  std::string nested = R"({"userId":"u","eventType":"LOGIN","payload":)";
  for (int i = 0; i < 30; ++i)
    nested += R"({"a":)";
  nested += "1" + std::string(30, '}') + "}";
  CHECK(parse_event_request(nested).ok());
  // A body of as many members as 1 MiB holds, one of them twice: answered in a moment (each
  // member compared with every other took over ten seconds).
  std::string many = "{";
  for (int i = 0; i < 150000; ++i)
    many += "\"" + std::to_string(i) + "\":0,";
  many += R"("7":1})";
  auto started = std::chrono::steady_clock::now();
  auto crowded = parse_event_request(many);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds{5});
  REQUIRE(crowded.errors.size() == 1);
  CHECK(crowded.errors[0].message == "7 appears more than once");
}

TEST_CASE("an event survives the trip to JSON and back") {
  event e{"3b6f1c4e-0000-4000-8000-000000000001", "us\"er\\\n\t\x01 ü 名前", "LOGOUT",
          "2026-11-24T01:52:00.047Z", R"({"nested":{"list":[1,"two",null,true],"q":"\"quoted\""},"emoji":"😀"})"};
  auto text = to_json(e);
  auto parsed_json = json::parse(text); // the text is valid JSON
  CHECK(parsed_json["userId"] == e.user_id);
  CHECK(parsed_json.size() == 5);
  auto back = parse_event_message(text);
  REQUIRE(back.ok());
  CHECK(back.value.event_id == e.event_id);
  CHECK(back.value.user_id == e.user_id);
  CHECK(back.value.event_type == e.event_type);
  CHECK(back.value.timestamp == e.timestamp);
  CHECK(json::parse(back.value.payload) == json::parse(e.payload));
}

TEST_CASE("message validation") {
  CHECK(parse_event_message(valid_message).ok());
  for (auto field : {"eventId", "userId", "eventType", "timestamp"}) {
    auto e = json::parse(valid_message);
    e.erase(field);
    auto r = parse_event_message(e.dump());
    INFO(field);
    CHECK(fields_of(r) == std::set<std::string>{field});
  }
  CHECK(fields_of(parse_event_message(patched({{"eventId", ""}}).dump())) == std::set<std::string>{"eventId"});
  CHECK(fields_of(parse_event_message(patched({{"eventId", 5}}).dump())) == std::set<std::string>{"eventId"});
  // GET /events/processed promises UUIDs, whoever produced the event.
  CHECK(fields_of(parse_event_message(patched({{"eventId", "not-a-uuid"}}).dump())) == std::set<std::string>{"eventId"});
  CHECK(fields_of(parse_event_message(patched({{"eventId", "3B6F1C4E-0000-4000-8000-000000000001"}}).dump())) == std::set<std::string>{"eventId"});
  CHECK(fields_of(parse_event_message(patched({{"eventType", "SIGNUP"}}).dump())) == std::set<std::string>{"eventType"});
  CHECK(fields_of(parse_event_message(patched({{"timestamp", "yesterday"}}).dump())) == std::set<std::string>{"timestamp"});
  CHECK(fields_of(parse_event_message(patched({{"payload", nullptr}}).dump())) == std::set<std::string>{"payload"});
  CHECK(fields_of(parse_event_message(patched({{"payload", json::array()}}).dump())) == std::set<std::string>{"payload"});
  // A missing payload is {}, and fields the service does not know are ignored.
  auto e = json::parse(valid_message);
  e.erase("payload");
  e["source"] = "another-producer";
  auto r = parse_event_message(e.dump());
  REQUIRE(r.ok());
  CHECK(r.value.payload == "{}");
  CHECK(json::parse(to_json(r.value)).size() == 5);
}

TEST_CASE("eventIds are distinct version 4 UUIDs") {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    auto id = make_uuid();
    CHECK(is_uuid(id));
    ids.insert(id);
  }
  CHECK(ids.size() == 1000);
  CHECK_FALSE(is_uuid("3B6F1C4E-0000-4000-8000-000000000001")); // we write lower case
  CHECK_FALSE(is_uuid("3b6f1c4e00004000800000000000000001"));
  CHECK_FALSE(is_uuid("3b6f1c4e-0000-4000-8000-00000000000g"));
}

TEST_CASE("timestamps: UTC, milliseconds, Z") {
  CHECK(is_utc_timestamp(utc_timestamp_now()));
  CHECK(is_utc_timestamp("2026-11-24T01:52:00.047Z"));
  CHECK(is_utc_timestamp("2026-11-24T01:52:00Z"));
  CHECK(is_utc_timestamp("2026-11-24T01:52:00.123456Z"));
  CHECK_FALSE(is_utc_timestamp("2026-13-24T01:52:00.047Z"));
  CHECK_FALSE(is_utc_timestamp("2026-11-24T24:52:00.047Z"));
  CHECK_FALSE(is_utc_timestamp("2026-11-24T01:52:00.047"));
  CHECK_FALSE(is_utc_timestamp("2026-11-24T01:52:00.047+01:00"));
  CHECK_FALSE(is_utc_timestamp("2026-11-24 01:52:00.047Z"));
  CHECK_FALSE(is_utc_timestamp("2026-11-24T01:52:00.Z"));
  // A day the month does not have, which would be counted on into the next month.
  CHECK(is_utc_timestamp("2028-02-29T00:00:00Z"));
  CHECK(is_utc_timestamp("2000-02-29T00:00:00Z"));
  CHECK_FALSE(is_utc_timestamp("2026-02-29T00:00:00Z"));
  CHECK_FALSE(is_utc_timestamp("1900-02-29T00:00:00Z"));
  CHECK_FALSE(is_utc_timestamp("2026-02-31T00:00:00Z"));
  CHECK_FALSE(is_utc_timestamp("2026-04-31T00:00:00Z"));
  CHECK(is_utc_timestamp("2026-12-31T00:00:00Z"));
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","timestamp":"2026-02-31T00:00:00Z"})")
        == "timestamp");
}

TEST_CASE("a field named twice is refused, whichever value would have counted") {
  CHECK(only_problem(R"({"userId":"u","eventType":"LOGIN","userId":"mallory"})") == "userId");
  auto r = parse_event_request(R"({"userId":"u","eventType":"LOGIN","userId":"mallory"})");
  CHECK(r.errors[0].message == "userId appears more than once");
  // On the topic too: such a message is skipped, not stored under one of its ids.
  auto m = parse_event_message(
    R"({"eventId":"a","eventId":"b","userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.047Z"})");
  CHECK(fields_of(m) == std::set<std::string>{"eventId"});
}

TEST_CASE("a body that is not JSON is told where it stops being JSON") {
  auto r = parse_event_request(R"({"userId":"u","eventType":LOGIN})");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "body is not valid JSON (at byte 26)");
}

TEST_CASE("a client's eventId is kept as it is, so that its retry is the same event") {
  const std::string body =
    R"({"eventId":"3b6f1c4e-0000-4000-8000-000000000001","userId":"u","eventType":"LOGIN"})";
  auto first = parse_event_request(body);
  auto retry = parse_event_request(body);
  REQUIRE(first.ok());
  REQUIRE(retry.ok());
  CHECK(first.value.event_id == "3b6f1c4e-0000-4000-8000-000000000001");
  CHECK(retry.value.event_id == first.value.event_id);
  // Anything but a lower-case UUID is refused, naming the field.
  for (std::string id : {R"("3B6F1C4E-0000-4000-8000-000000000001")", R"("")", "42", "null",
                         R"("3b6f1c4e00004000800000000000000001")"}) {
    INFO(id);
    auto r = parse_event_request(R"({"eventId":)" + id + R"(,"userId":"u","eventType":"LOGIN"})");
    REQUIRE(fields_of(r) == std::set<std::string>{"eventId"});
    CHECK_THAT(r.errors[0].message, Catch::Contains("UUID in lower case"));
  }
}

TEST_CASE("a batch is an array of events, each judged on its own") {
  auto r = parse_batch_request(
    R"([{"userId":"a","eventType":"LOGIN"}, 42, {"userId":"","eventType":"LOGOUT"},
        {"eventId":"3b6f1c4e-0000-4000-8000-000000000002","userId":"b","eventType":"PRODUCT_VIEW","payload":{"p":[1]}}])",
    500);
  REQUIRE(r.ok());
  REQUIRE(r.items.size() == 4);
  CHECK(r.items[0].ok());
  CHECK(r.items[0].value.user_id == "a");
  CHECK(is_uuid(r.items[0].value.event_id));
  CHECK(fields_of(r.items[1]) == std::set<std::string>{"event"});
  CHECK(r.items[1].errors[0].message == "event must be a JSON object, not number");
  CHECK(fields_of(r.items[2]) == std::set<std::string>{"userId"});
  REQUIRE(r.items[3].ok());
  CHECK(r.items[3].value.event_id == "3b6f1c4e-0000-4000-8000-000000000002");
  CHECK(json::parse(r.items[3].value.payload) == json{{"p", {1}}});
}

TEST_CASE("a batch body that is not a non-empty array within the limit is one problem") {
  auto problem = [](const std::string& body, size_t max = 3) {
    auto r = parse_batch_request(body, max);
    INFO(body);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.items.empty());
    CHECK(r.errors[0].field == "body");
    return r.errors[0].message;
  };
  CHECK(problem("[]") == "body must hold 1 to 3 events, not 0");
  CHECK(problem(R"([{},{},{},{}])") == "body must hold 1 to 3 events, not 4");
  CHECK(problem(R"({"userId":"a","eventType":"LOGIN"})")
        == "body must be a JSON array of events, not object");
  CHECK(problem(R"([{"userId":"a"},)") == "body is not valid JSON (at byte 16)");
  CHECK_THAT(problem(std::string(10000, '[')), Catch::Contains("nests deeper"));
  CHECK(parse_batch_request(R"( [ {"userId":"a","eventType":"LOGIN"} ] )", 1).ok());
}

TEST_CASE("a client's timestamp says when the event happened, receivedAt when it came") {
  auto r = parse_event_request(
    R"({"userId":"u","eventType":"LOGIN","timestamp":"2026-11-24T01:52:00.04789Z"})");
  REQUIRE(r.ok());
  CHECK(r.value.timestamp == "2026-11-24T01:52:00.047Z"); // the service's own format
  REQUIRE(is_utc_timestamp(r.value.received_at));
  std::tm tm{};
  REQUIRE(strptime(r.value.received_at.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  CHECK(std::abs(std::time(nullptr) - timegm(&tm)) <= 2);
  auto on_topic = json::parse(to_json(r.value));
  CHECK(on_topic["timestamp"] == "2026-11-24T01:52:00.047Z");
  CHECK(on_topic["receivedAt"] == r.value.received_at);
  auto back = parse_event_message(to_json(r.value));
  REQUIRE(back.ok());
  CHECK(back.value == r.value);
  CHECK(parse_event_request(R"({"userId":"u","eventType":"LOGIN","timestamp":"1969-12-31T23:59:59.5Z"})")
          .value.timestamp == "1969-12-31T23:59:59.500Z");

  // A little ahead (clocks differ) is taken; more than a minute is not.
  auto at = [](std::chrono::seconds ahead) {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string{text};
  };
  CHECK(parse_event_request(R"({"userId":"u","eventType":"LOGIN","timestamp":")" + at(std::chrono::seconds{30}) + "\"}").ok());
  auto late = parse_event_request(R"({"userId":"u","eventType":"LOGIN","timestamp":")" + at(std::chrono::seconds{90}) + "\"}");
  REQUIRE(fields_of(late) == std::set<std::string>{"timestamp"});
  CHECK_THAT(late.errors[0].message, Catch::Contains("more than a minute in the future"));

  // Without one, the service's time alone, and no receivedAt.
  auto plain = parse_event_request(R"({"userId":"u","eventType":"LOGIN"})");
  CHECK(plain.value.received_at.empty());
  CHECK_FALSE(json::parse(to_json(plain.value)).contains("receivedAt"));
  CHECK(fields_of(parse_event_message(patched({{"receivedAt", "soon"}}).dump()))
        == std::set<std::string>{"receivedAt"});
}
