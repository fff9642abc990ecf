// Hexadecimal digits: how UUIDs, key digests and JSON's \u escapes carry bytes as text.
#pragma once

namespace uas {

// Lower case, as UUIDs and digests are written.
inline constexpr char hex_digits[] = "0123456789abcdef";

// The value of one hexadecimal digit of either case; -1 if `c` is none.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace uas
