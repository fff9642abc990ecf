// A user activity event: the one record that travels from POST through Kafka to the store.
// Parsing and validation live here so the HTTP route and the consumer apply the same rules.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>


namespace uas {

struct event {
  std::string event_id;
  std::string user_id;
  std::string event_type;
  std::string timestamp; // UTC, milliseconds, 'Z': when it happened, by the client if it said
  std::string payload;   // a JSON object, serialized
  std::string received_at{}; // when the service took it, if the client gave `timestamp`; else empty
  // The W3C trace context the event travels in (SPEC, Event): a header on the topic beside the
  // event's JSON, not part of it; empty when the message came without one.
  std::string traceparent{};

  friend bool operator==(const event& a, const event& b) {
    return a.event_id == b.event_id && a.user_id == b.user_id && a.event_type == b.event_type
           && a.timestamp == b.timestamp && a.payload == b.payload
           && a.received_at == b.received_at && a.traceparent == b.traceparent;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.event_id, x.user_id, x.event_type, x.timestamp, x.payload, x.received_at,
           x.traceparent);
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

// The largest event a request may carry: a POST /events/generate body, or one event of a batch.
constexpr size_t max_event_request_bytes = 1024 * 1024;

bool is_event_type(std::string_view type);

// The longest userId taken, in characters (Unicode code points).
constexpr size_t max_user_id_characters = 256;

// A POST /events/generate body: {userId, eventType, payload?, eventId?, timestamp?}, no other
// fields. On success the event keeps the client's eventId, a lower-case UUID (so that a client's
// retry of it is stored once), or gets a fresh one. Its timestamp is the client's, a UTC time no
// more than a minute ahead (when the event happened: sent late, or in a batch), with the current
// time as receivedAt beside it; or else the current time.
parse_result parse_event_request(std::string_view body);

// What parsing a POST /events/batch body gives: each event's own result, in order, or what is
// wrong with the body as a whole (then no items).
struct batch_parse_result {
  std::vector<parse_result> items;
  std::vector<validation_error> errors;
  bool ok() const { return errors.empty(); }
};

// A POST /events/batch body: a JSON array of 1 to `max_events` events, each read as
// parse_event_request reads a body (and no bigger than one), and each judged on its own.
batch_parse_result parse_batch_request(std::string_view body, size_t max_events);

// An event as it appears on the topic: the five fields as the service writes them, and
// receivedAt when the client gave the timestamp.
parse_result parse_event_message(std::string_view text);

// The event's JSON text: what goes on the topic and what GET /events/processed returns.
std::string to_json(const event& e);
// The same text, written at the end of `out`.
void append_json(std::string& out, const event& e);

// `text` as to_json writes it between a JSON string's quotes.
std::string json_escaped(std::string_view text);

// A fresh random (version 4) UUID in lower-case canonical form.
std::string make_uuid();

// The current time as 2026-11-24T01:52:00.047Z.
std::string utc_timestamp_now();

// How far ahead of the service's clock a client's timestamp may be (clocks differ).
constexpr std::chrono::seconds max_client_clock_lead{60};

bool is_uuid(std::string_view text);
bool is_utc_timestamp(std::string_view text);

} // namespace uas
