#include "core/message_contract.hpp"

#include "core/trace_context.hpp"

namespace uas {

void write_event_message(const event& e, kafka::outgoing_message& m) {
  m.has_key = m.has_value = true;
  m.key.assign(e.user_id);
  m.value.clear();
  append_json(m.value, e);
  m.headers.resize(e.traceparent.empty() ? 1 : 2);
  m.headers[0].name.assign(schema_version_header);
  m.headers[0].value.assign(schema_version);
  if (!e.traceparent.empty()) {
    m.headers[1].name.assign(traceparent_header);
    m.headers[1].value.assign(e.traceparent);
  }
}

const kafka::header* find_header(const kafka::headers& hs, std::string_view name) {
  for (auto it = hs.rbegin(); it != hs.rend(); ++it)
    if (it->name == name)
      return &*it;
  return nullptr;
}

std::string unknown_schema(const kafka::headers& hs) {
  auto* h = find_header(hs, schema_version_header);
  if (!h || (!h->is_null && h->value == schema_version))
    return {};
  // Quoted as JSON would, roughly: the header may hold any bytes, the log line may not.
  std::string shown;
  for (unsigned char c : h->value.substr(0, 32))
    shown += c >= 0x20 && c < 0x7f && c != '"' ? static_cast<char>(c) : '?';
  return std::string{"schema-version \""} + (h->is_null ? "(null)" : shown)
         + "\" is not one this consumer reads (it reads " + std::string{schema_version} + ")";
}

std::string traceparent_of(const kafka::headers& hs) {
  auto* h = find_header(hs, traceparent_header);
  if (!h || h->is_null || !parse_traceparent(h->value))
    return {};
  return h->value;
}

std::string_view name_of(dead_letter_reason reason) {
  switch (reason) {
    case dead_letter_reason::malformed: return "malformed";
    case dead_letter_reason::invalid: return "invalid";
    case dead_letter_reason::unknown_schema: return "unknown-schema";
    case dead_letter_reason::too_large: return "too-large";
    case dead_letter_reason::store_rejected: return "store-rejected";
  }
  return "invalid";
}

kafka::outgoing_message dead_letter(const kafka::record& r, dead_letter_reason reason,
                                    std::string_view error, std::string_view consumer_group) {
  kafka::outgoing_message m{r.has_key, r.key, r.has_value, r.value, r.headers};
  m.headers.push_back({"dlq.reason", std::string{name_of(reason)}});
  m.headers.push_back({"dlq.error", std::string{error}});
  m.headers.push_back({"dlq.original.topic", r.topic});
  m.headers.push_back({"dlq.original.partition", std::to_string(r.partition)});
  m.headers.push_back({"dlq.original.offset", std::to_string(r.offset)});
  m.headers.push_back({"dlq.consumer.group", std::string{consumer_group}});
  return m;
}

} // namespace uas
