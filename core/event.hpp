// A user activity event: the one record that travels from POST through Kafka to the store.
// Parsing and validation live here so the HTTP route and the consumer apply the same rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>


namespace uas {

struct event {
  std::string event_id;
  std::string user_id;
  std::string event_type;
  std::string timestamp; // UTC, milliseconds, 'Z'
  std::string payload;   // a JSON object, serialized

  friend bool operator==(const event& a, const event& b) {
    return a.event_id == b.event_id && a.user_id == b.user_id && a.event_type == b.event_type
           && a.timestamp == b.timestamp && a.payload == b.payload;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.event_id, x.user_id, x.event_type, x.timestamp, x.payload);
}

// One problem with a request or message: which field, and what is wrong with it.
struct validation_error {
  std::string field;
  std::string message;
};

// What parsing a body or message gives: an event, or every problem found with it.
struct parse_result {
  event value;
  std::vector<validation_error> errors;
  bool ok() const { return errors.empty(); }
};

bool is_event_type(std::string_view type);

// A POST /events/generate body: {userId, eventType, payload?}, no other fields. On success the
// event is stamped with a fresh eventId and the current time.
parse_result parse_event_request(std::string_view body);

// An event as it appears on the topic: all five fields, as the service writes them.
parse_result parse_event_message(std::string_view text);

// The event's JSON text: what goes on the topic and what GET /events/processed returns.
std::string to_json(const event& e);

// A fresh random (version 4) UUID in lower-case canonical form.
std::string make_uuid();

// The current time as 2026-11-24T01:52:00.047Z.
std::string utc_timestamp_now();

bool is_uuid(std::string_view text);
bool is_utc_timestamp(std::string_view text);

} // namespace uas
