#include "core/trace_context.hpp"

#include "core/random.hpp"

namespace uas {

namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  return true;
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

// A random id of `bytes` bytes in hex, never all zero (which the specification reserves).
std::string random_hex_id(size_t bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  do {
    unsigned char raw[16];
    random_bytes(raw, bytes);
    text.clear();
    for (size_t i = 0; i < bytes; ++i) {
      text += hex[raw[i] >> 4];
      text += hex[raw[i] & 0x0F];
    }
  } while (all_zero(text));
  return text;
}

} // namespace

std::string trace_context::traceparent() const {
  return "00-" + trace_id + "-" + span_id + "-" + flags;
}

std::optional<trace_context> parse_traceparent(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 characters.
  constexpr size_t length = 55;
  if (header.size() < length)
    return std::nullopt;
  auto version = header.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff")
    return std::nullopt;
  // Version 00 is exactly this long; a later one may add fields after another dash.
  if (version == "00" ? header.size() != length : header.size() > length && header[length] != '-')
    return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-')
    return std::nullopt;
  trace_context ctx{std::string{header.substr(3, 32)}, std::string{header.substr(36, 16)},
                    std::string{header.substr(53, 2)}};
  if (!is_lower_hex(ctx.trace_id) || all_zero(ctx.trace_id) || !is_lower_hex(ctx.span_id)
      || all_zero(ctx.span_id) || !is_lower_hex(ctx.flags))
    return std::nullopt;
  return ctx;
}

std::string next_traceparent(std::string_view incoming) {
  if (auto parent = parse_traceparent(incoming)) {
    // The flags pass on as they came: the caller's sampling decision stands.
    return trace_context{std::move(parent->trace_id), random_hex_id(8), std::move(parent->flags)}
      .traceparent();
  }
  // A trace of our own, marked sampled: every event's lines are logged with its trace id.
  return trace_context{random_hex_id(16), random_hex_id(8), "01"}.traceparent();
}

std::string trace_id_of(std::string_view traceparent) {
  auto ctx = parse_traceparent(traceparent);
  return ctx ? ctx->trace_id : std::string{};
}

} // namespace uas
