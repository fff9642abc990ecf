// Event parsing, validation and serialization, shared by the HTTP route and the consumer.
#include "actors/event.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>
#include <uuid/uuid.h>

namespace uas {

namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 3> event_types{"LOGIN", "LOGOUT", "PRODUCT_VIEW"};

// Serializing a JSON tree recurses once per level; refusing deep input up front keeps a hostile
// body from exhausting a thread's stack.
constexpr int max_nesting_depth = 64;

bool nests_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_nesting_depth)
        return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Parses text that must be one JSON object; reports why not otherwise.
bool parse_object(std::string_view text, json& out, std::vector<validation_error>& errors) {
  if (nests_too_deep(text)) {
    errors.push_back({"body", "JSON nests deeper than " + std::to_string(max_nesting_depth)
                                  + " levels"});
    return false;
  }
  out = json::parse(text, nullptr, false);
  if (out.is_discarded()) {
    errors.push_back({"body", "body is not valid JSON"});
    return false;
  }
  if (!out.is_object()) {
    errors.push_back({"body", std::string{"body must be a JSON object, not "} + out.type_name()});
    return false;
  }
  return true;
}

bool is_blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// A required non-blank string field.
void take_string(const json& obj, const char* name, std::string& out,
                 std::vector<validation_error>& errors) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    errors.push_back({name, std::string{name} + " is required"});
  } else if (!it->is_string()) {
    errors.push_back({name, std::string{name} + " must be a string, not " + it->type_name()});
  } else if (is_blank(it->get_ref<const std::string&>())) {
    errors.push_back({name, std::string{name} + " must not be empty"});
  } else {
    out = it->get<std::string>();
  }
}

void take_event_type(const json& obj, std::string& out, std::vector<validation_error>& errors) {
  take_string(obj, "eventType", out, errors);
  if (!out.empty() && !is_event_type(out)) {
    errors.push_back({"eventType", "eventType must be one of LOGIN, LOGOUT, PRODUCT_VIEW, not \""
                                       + out + "\""});
    out.clear();
  }
}

// An optional object; absent means {}.
void take_payload(const json& obj, std::string& out, std::vector<validation_error>& errors) {
  auto it = obj.find("payload");
  if (it == obj.end())
    out = "{}";
  else if (!it->is_object())
    errors.push_back({"payload", std::string{"payload must be an object, not "} + it->type_name()});
  else
    out = it->dump();
}

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return !s.empty();
}

} // namespace

bool is_event_type(std::string_view type) {
  for (auto known : event_types)
    if (type == known)
      return true;
  return false;
}

parse_result parse_event_request(std::string_view body) {
  parse_result result;
  json obj;
  if (!parse_object(body, obj, result.errors))
    return result;
  take_string(obj, "userId", result.value.user_id, result.errors);
  take_event_type(obj, result.value.event_type, result.errors);
  take_payload(obj, result.value.payload, result.errors);
  for (auto& [key, value] : obj.items())
    if (key != "userId" && key != "eventType" && key != "payload")
      result.errors.push_back({key, key + " is not allowed"});
  if (result.ok()) {
    result.value.event_id = make_uuid();
    result.value.timestamp = utc_timestamp_now();
  }
  return result;
}

parse_result parse_event_message(std::string_view text) {
  parse_result result;
  json obj;
  if (!parse_object(text, obj, result.errors))
    return result;
  take_string(obj, "eventId", result.value.event_id, result.errors);
  take_string(obj, "userId", result.value.user_id, result.errors);
  take_event_type(obj, result.value.event_type, result.errors);
  take_string(obj, "timestamp", result.value.timestamp, result.errors);
  if (!result.value.timestamp.empty() && !is_utc_timestamp(result.value.timestamp)) {
    result.errors.push_back({"timestamp", "timestamp must be an ISO 8601 UTC time such as "
                                          "2026-11-24T01:52:00.047Z"});
  }
  take_payload(obj, result.value.payload, result.errors);
  return result;
}

std::string to_json(const event& e) {
  std::string out;
  out.reserve(96 + e.event_id.size() + e.user_id.size() + e.timestamp.size() + e.payload.size());
  out += "{\"eventId\":";
  append_escaped(out, e.event_id);
  out += ",\"userId\":";
  append_escaped(out, e.user_id);
  out += ",\"eventType\":";
  append_escaped(out, e.event_type);
  out += ",\"timestamp\":";
  append_escaped(out, e.timestamp);
  out += ",\"payload\":";
  out += e.payload.empty() ? std::string_view{"{}"} : std::string_view{e.payload};
  out += '}';
  return out;
}

std::string make_uuid() {
  uuid_t raw;
  uuid_generate_random(raw);
  char text[37];
  uuid_unparse_lower(raw, text);
  return text;
}

std::string utc_timestamp_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return text;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36)
    return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

// Accepts YYYY-MM-DDTHH:MM:SS, an optional fraction, and 'Z'.
bool is_utc_timestamp(std::string_view s) {
  if (s.size() < 20 || s.back() != 'Z')
    return false;
  auto digits = [&](size_t pos, size_t n) { return all_digits(s.substr(pos, n)); };
  if (!(digits(0, 4) && s[4] == '-' && digits(5, 2) && s[7] == '-' && digits(8, 2) && s[10] == 'T'
        && digits(11, 2) && s[13] == ':' && digits(14, 2) && s[16] == ':' && digits(17, 2)))
    return false;
  int month = std::stoi(std::string{s.substr(5, 2)});
  int day = std::stoi(std::string{s.substr(8, 2)});
  int hour = std::stoi(std::string{s.substr(11, 2)});
  int minute = std::stoi(std::string{s.substr(14, 2)});
  int second = std::stoi(std::string{s.substr(17, 2)});
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return false;
  auto rest = s.substr(19, s.size() - 20);
  return rest.empty() || (rest[0] == '.' && rest.size() <= 10 && all_digits(rest.substr(1)));
}

} // namespace uas
