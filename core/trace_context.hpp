// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a request brings is
// continued, or a new trace begins, and the trace id follows the event into every log line about
// it. Propagation and logs only: no spans are recorded or exported.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace uas {

struct trace_context {
  std::string trace_id; // 32 lower-case hex digits, not all zero
  std::string span_id;  // 16 lower-case hex digits, not all zero
  std::string flags;    // 2 hex digits; bit 0: sampled

  // As a traceparent header of version 00.
  std::string traceparent() const;
};

// The context in a traceparent header, or nothing when it is not a valid one. A version above 00
// is read as 00 where it agrees (the specification's rule for versions from the future).
std::optional<trace_context> parse_traceparent(std::string_view header);

// The traceparent for work done on behalf of `incoming`: its trace continued with a new span id,
// or, when `incoming` is absent or invalid, a new trace.
std::string next_traceparent(std::string_view incoming);

// The trace id of a valid traceparent; empty otherwise.
std::string trace_id_of(std::string_view traceparent);

} // namespace uas
