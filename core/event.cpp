// Event parsing, validation and serialization, shared by the HTTP route and the consumer.
#include "core/event.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <system_error>
#include <unordered_set>


#include "core/hex.hpp"
#include "core/json_object.hpp"
#include "core/random.hpp"

namespace uas {

namespace {

constexpr std::array<std::string_view, 3> event_types{"LOGIN", "LOGOUT", "PRODUCT_VIEW"};

// The members of text that must be one JSON object; empty, with the reason in `errors`, if it is
// not one, or names a member twice (which of the two would count is anybody's guess).
// `whole` names the text in errors: the body, or an event of a batch.
std::vector<json::member> read_members(std::string_view text,
                                       std::vector<validation_error>& errors,
                                       const std::string& whole = "body") {
  auto read = json::read_object(text);
  switch (read.why) {
    case json::failure::none: break;
    case json::failure::not_json:
      errors.push_back({whole, whole + " is not valid JSON (at byte " + std::to_string(read.at) + ")"});
      return {};
    case json::failure::too_deep:
      errors.push_back(
        {whole, "JSON nests deeper than " + std::to_string(json::max_depth) + " levels"});
      return {};
    case json::failure::not_object:
    case json::failure::not_array:
      errors.push_back(
        {whole, whole + " must be a JSON object, not " + json::name_of(read.found)});
      return {};
  }
  auto twice = [&](const json::member& m) {
    errors.push_back({m.key, m.key + " appears more than once"});
  };
  // Comparing each key with those before it costs nothing for an event's few members, but a
  // body of a hundred thousand took seconds of a worker's time: beyond a few, a set.
  constexpr size_t scanned_at_most = 8;
  if (read.members.size() <= scanned_at_most) {
    for (size_t i = 0; i < read.members.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (read.members[i].key == read.members[j].key) {
          twice(read.members[i]);
          break;
        }
  } else {
    std::unordered_set<std::string_view> seen;
    seen.reserve(read.members.size());
    for (auto& m : read.members)
      if (!seen.insert(m.key).second)
        twice(m);
  }
  return std::move(read.members);
}

json::member* find(std::vector<json::member>& members, std::string_view key) {
  for (auto& m : members)
    if (m.key == key)
      return &m;
  return nullptr;
}

bool is_blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// A required non-blank string member.
void take_string(std::vector<json::member>& members, const char* name, std::string& out,
                 std::vector<validation_error>& errors) {
  auto* m = find(members, name);
  if (!m) {
    errors.push_back({name, std::string{name} + " is required"});
  } else if (m->type != json::kind::string) {
    errors.push_back({name, std::string{name} + " must be a string, not " + json::name_of(m->type)});
  } else if (is_blank(m->value)) {
    errors.push_back({name, std::string{name} + " must not be empty"});
  } else {
    out = std::move(m->value);
  }
}

// Characters, not bytes: the JSON reader hands strings over as UTF-8.
size_t count_characters(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text)
    n += (c & 0xC0) != 0x80; // every byte but a continuation byte starts a character
  return n;
}

// userId is the Kafka key and sits in every log line about its event: a bound keeps one client
// from making either as big as a request body.
void take_user_id(std::vector<json::member>& members, std::string& out,
                  std::vector<validation_error>& errors) {
  take_string(members, "userId", out, errors);
  if (auto n = count_characters(out); n > max_user_id_characters) {
    errors.push_back({"userId", "userId must be at most " + std::to_string(max_user_id_characters)
                                  + " characters, not " + std::to_string(n)});
    out.clear();
  }
}

void take_event_type(std::vector<json::member>& members, std::string& out,
                     std::vector<validation_error>& errors) {
  take_string(members, "eventType", out, errors);
  if (!out.empty() && !is_event_type(out)) {
    errors.push_back({"eventType", "eventType must be one of LOGIN, LOGOUT, PRODUCT_VIEW, not \""
                                       + out + "\""});
    out.clear();
  }
}

// An optional object; absent means {}.
void take_payload(std::vector<json::member>& members, std::string& out,
                  std::vector<validation_error>& errors) {
  auto* m = find(members, "payload");
  if (!m)
    out = "{}";
  else if (m->type != json::kind::object)
    errors.push_back(
      {"payload", std::string{"payload must be an object, not "} + json::name_of(m->type)});
  else
    out = std::move(m->value);
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return !s.empty();
}

// Times to the millisecond: the system clock's own nanoseconds would overflow in the year 2262,
// and a client may send any year.
using utc_millis = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

utc_millis now_millis() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// A time as 2026-11-24T01:52:00.047Z.
std::string format_utc(utc_millis t) {
  auto ms = t.time_since_epoch().count();
  auto millis = ms % 1000;
  if (millis < 0) // before 1970: the second before, and the milliseconds after it
    millis += 1000;
  std::time_t seconds = static_cast<std::time_t>((ms - millis) / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  // Digit by digit: each event of a batch is stamped, and snprintf showed in its profile.
  // Years have four digits here: is_utc_timestamp accepts no others, and the clock gives none.
  std::string text = "0000-00-00T00:00:00.000Z";
  auto put = [&text](size_t at, size_t digits, int value) {
    for (size_t i = at + digits; i > at; value /= 10)
      text[--i] = static_cast<char>('0' + value % 10);
  };
  put(0, 4, tm.tm_year + 1900);
  put(5, 2, tm.tm_mon + 1);
  put(8, 2, tm.tm_mday);
  put(11, 2, tm.tm_hour);
  put(14, 2, tm.tm_min);
  put(17, 2, tm.tm_sec);
  put(20, 3, static_cast<int>(millis));
  return text;
}

// When a request was received, and that time as the service writes it. A batch's events are
// received together: one receipt stamps them all.
struct receipt {
  utc_millis time = now_millis();
  std::string stamp = format_utc(time);
};

// The time a text that is_utc_timestamp accepts stands for, to the millisecond.
utc_millis parse_utc(std::string_view s) {
  auto number = [&](size_t pos, size_t n) { return std::stoi(std::string{s.substr(pos, n)}); };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  int ms = 0;
  if (s[19] == '.') // up to three digits of the fraction count
    for (size_t i = 20, scale = 100; i < s.size() - 1 && scale > 0; ++i, scale /= 10)
      ms += (s[i] - '0') * static_cast<int>(scale);
  return utc_millis{std::chrono::seconds{timegm(&tm)} + std::chrono::milliseconds{ms}};
}

// An optional timestamp a client gave: when the event happened, not after a minute from now.
// The event keeps it in the service's own format, and the time it was received beside it.
void take_client_timestamp(std::vector<json::member>& members, event& e, const receipt& received,
                           std::vector<validation_error>& errors) {
  auto* m = find(members, "timestamp");
  if (!m) {
    e.timestamp = received.stamp;
    return;
  }
  if (m->type != json::kind::string || !is_utc_timestamp(m->value)) {
    errors.push_back({"timestamp", "timestamp must be an ISO 8601 UTC time such as "
                                   "2026-11-24T01:52:00.047Z"});
    return;
  }
  auto happened = parse_utc(m->value);
  if (happened > received.time + max_client_clock_lead) {
    errors.push_back({"timestamp", "timestamp must not be more than a minute in the future, not "
                                     + m->value});
    return;
  }
  e.timestamp = format_utc(happened);
  e.received_at = received.stamp;
}

// An optional eventId a client chose: kept as it is, so its retries carry the same one.
void take_event_id(std::vector<json::member>& members, std::string& out,
                   std::vector<validation_error>& errors) {
  auto* m = find(members, "eventId");
  if (!m)
    return;
  if (m->type != json::kind::string || !is_uuid(m->value))
    errors.push_back({"eventId", "eventId must be a UUID in lower case such as "
                                 "3b6f1c4e-0000-4000-8000-000000000001"});
  else
    out = std::move(m->value);
}

// A request's event, from a POST body or one element of a batch (`whole` names which in errors).
parse_result parse_request(std::string_view text, const std::string& whole,
                           const receipt& received) {
  parse_result result;
  auto members = read_members(text, result.errors, whole);
  if (!result.ok())
    return result;
  for (auto& m : members)
    if (m.key != "userId" && m.key != "eventType" && m.key != "payload" && m.key != "eventId"
        && m.key != "timestamp")
      result.errors.push_back({m.key, m.key + " is not allowed"});
  take_event_id(members, result.value.event_id, result.errors);
  take_user_id(members, result.value.user_id, result.errors);
  if (result.value.user_id.find('\0') != std::string::npos) {
    // PostgreSQL text cannot hold it: taken, the event would be answered 201 and then refused by
    // the store, into the dead-letter topic.
    result.errors.push_back({"userId", "userId must not contain the character U+0000"});
    result.value.user_id.clear();
  }
  take_event_type(members, result.value.event_type, result.errors);
  take_payload(members, result.value.payload, result.errors);
  take_client_timestamp(members, result.value, received, result.errors);
  if (result.ok() && result.value.event_id.empty())
    result.value.event_id = make_uuid();
  return result;
}

} // namespace

bool is_event_type(std::string_view type) {
  for (auto known : event_types)
    if (type == known)
      return true;
  return false;
}

parse_result parse_event_request(std::string_view body) {
  return parse_request(body, "body", receipt{});
}

batch_parse_result parse_batch_request(std::string_view body, size_t max_events) {
  batch_parse_result result;
  auto read = json::read_array(body, max_events + 1);
  switch (read.why) {
    case json::failure::none: break;
    case json::failure::not_json:
      result.errors.push_back(
        {"body", "body is not valid JSON (at byte " + std::to_string(read.at) + ")"});
      return result;
    case json::failure::too_deep:
      result.errors.push_back(
        {"body", "JSON nests deeper than " + std::to_string(json::max_depth) + " levels"});
      return result;
    case json::failure::not_object:
    case json::failure::not_array:
      result.errors.push_back(
        {"body", std::string{"body must be a JSON array of events, not "} + json::name_of(read.found)});
      return result;
  }
  if (read.count == 0 || read.count > max_events) {
    result.errors.push_back({"body", "body must hold 1 to " + std::to_string(max_events)
                                       + " events, not " + std::to_string(read.count)});
    return result;
  }
  result.items.reserve(read.elements.size());
  receipt received;
  for (auto& element : read.elements) {
    if (element.text.size() > max_event_request_bytes) {
      parse_result too_big;
      too_big.errors.push_back({"event", "event exceeds 1 MiB"});
      result.items.push_back(std::move(too_big));
    } else {
      result.items.push_back(parse_request(element.text, "event", received));
    }
  }
  return result;
}

parse_result parse_event_message(std::string_view text) {
  parse_result result;
  auto members = read_members(text, result.errors);
  if (!result.ok())
    return result;
  take_string(members, "eventId", result.value.event_id, result.errors);
  if (!result.value.event_id.empty() && !is_uuid(result.value.event_id)) {
    // What GET /events/processed promises its readers, whoever produced the event.
    result.errors.push_back({"eventId", "eventId must be a UUID in lower case such as "
                                        "3b6f1c4e-0000-4000-8000-000000000001"});
  }
  take_user_id(members, result.value.user_id, result.errors);
  take_event_type(members, result.value.event_type, result.errors);
  take_string(members, "timestamp", result.value.timestamp, result.errors);
  if (!result.value.timestamp.empty() && !is_utc_timestamp(result.value.timestamp)) {
    result.errors.push_back({"timestamp", "timestamp must be an ISO 8601 UTC time such as "
                                          "2026-11-24T01:52:00.047Z"});
  }
  take_payload(members, result.value.payload, result.errors);
  if (auto* m = find(members, "receivedAt")) {
    if (m->type != json::kind::string || !is_utc_timestamp(m->value))
      result.errors.push_back({"receivedAt", "receivedAt must be an ISO 8601 UTC time such as "
                                             "2026-11-24T01:52:00.047Z"});
    else
      result.value.received_at = std::move(m->value);
  }
  return result;
}

std::string to_json(const event& e) {
  std::string out;
  append_json(out, e);
  return out;
}

void append_json(std::string& out, const event& e) {
  out.reserve(out.size() + 112 + e.event_id.size() + e.user_id.size() + e.timestamp.size()
              + e.payload.size() + e.received_at.size());
  out += "{\"eventId\":";
  json::append_string(out, e.event_id);
  out += ",\"userId\":";
  json::append_string(out, e.user_id);
  out += ",\"eventType\":";
  json::append_string(out, e.event_type);
  out += ",\"timestamp\":";
  json::append_string(out, e.timestamp);
  if (!e.received_at.empty()) {
    out += ",\"receivedAt\":";
    json::append_string(out, e.received_at);
  }
  out += ",\"payload\":";
  out += e.payload.empty() ? std::string_view{"{}"} : std::string_view{e.payload};
  out += '}';
}

std::string json_escaped(std::string_view text) {
  std::string quoted;
  json::append_string(quoted, text);
  return quoted.substr(1, quoted.size() - 2);
}

std::string make_uuid() {
  unsigned char raw[16];
  random_bytes(raw, sizeof raw);
  raw[6] = static_cast<unsigned char>((raw[6] & 0x0F) | 0x40); // version 4
  raw[8] = static_cast<unsigned char>((raw[8] & 0x3F) | 0x80); // RFC 4122 variant
  std::string text;
  text.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      text += '-';
    text += hex_digits[raw[i] >> 4];
    text += hex_digits[raw[i] & 0x0F];
  }
  return text;
}

std::string utc_timestamp_now() {
  return format_utc(now_millis());
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

namespace {

// A day past the month's last would be read as one in the next month (timegm counts on): a
// client's 2026-02-31 must be refused, not stored as 2026-03-03.
int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

} // namespace

// Accepts YYYY-MM-DDTHH:MM:SS, an optional fraction, and 'Z'.
bool is_utc_timestamp(std::string_view s) {
  if (s.size() < 20 || s.back() != 'Z')
    return false;
  auto digits = [&](size_t pos, size_t n) { return all_digits(s.substr(pos, n)); };
  if (!(digits(0, 4) && s[4] == '-' && digits(5, 2) && s[7] == '-' && digits(8, 2) && s[10] == 'T'
        && digits(11, 2) && s[13] == ':' && digits(14, 2) && s[16] == ':' && digits(17, 2)))
    return false;
  int year = std::stoi(std::string{s.substr(0, 4)});
  int month = std::stoi(std::string{s.substr(5, 2)});
  int day = std::stoi(std::string{s.substr(8, 2)});
  int hour = std::stoi(std::string{s.substr(11, 2)});
  int minute = std::stoi(std::string{s.substr(14, 2)});
  int second = std::stoi(std::string{s.substr(17, 2)});
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23
      || minute > 59 || second > 60)
    return false;
  auto rest = s.substr(19, s.size() - 20);
  return rest.empty() || (rest[0] == '.' && rest.size() <= 10 && all_digits(rest.substr(1)));
}

} // namespace uas
