// A strict JSON (RFC 8259) reader for the one shape the service reads on every request and every
// message: an object whose members it looks at one level deep. It decodes string members, keeps
// any other member as compact JSON text, and builds no tree: a DOM parser took more time per POST
// than everything else the service does with the event, and nlohmann/json's SAX reader cost
// 1.6 µs more per POST than this one (docs/performance.md, "Our code or the library's"). Strings
// are written by nlohmann/json, which costs little more than a writer of our own did.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace uas::json {

enum class kind { null, boolean, number, string, array, object };

// The JSON name of a kind, as error messages show it: "null", "boolean", "number", ...
const char* name_of(kind k);

struct member {
  std::string key;   // decoded
  kind type;
  std::string value; // a string's decoded text; any other value as compact JSON text
};

// Arrays and objects nested deeper than this are refused: input from the network must not
// choose the reader's recursion depth.
constexpr int max_depth = 64;

enum class failure { none, not_json, too_deep, not_object, not_array };

struct object_result {
  std::vector<member> members; // in the order written
  failure why = failure::none;
  size_t at = 0;              // not_json: the byte offset where the text stops being JSON
  kind found = kind::object;  // not_object: what the text is instead
  bool ok() const { return why == failure::none; }
};

// Reads text that must be exactly one JSON object, with whitespace around it allowed.
object_result read_object(std::string_view text);

// Whether `text` is well-formed UTF-8 (RFC 3629), as every string read_object decodes is.
bool is_utf8(std::string_view text);

// Appends `text` as a JSON string, quoted and escaped by nlohmann/json. Invalid UTF-8, which
// read_object never passes on, is replaced rather than refused: a writer must not throw. Text of
// printable ASCII with no quote or backslash, what ids, types and timestamps nearly always are,
// needs no escaping and is copied as it is.
void append_string(std::string& out, std::string_view text);

// One element of an array, as the text it was written as (a view into the array's text).
struct element {
  kind type;
  std::string_view text;
};

struct array_result {
  std::vector<element> elements; // in the order written, the first `kept_at_most` of them
  size_t count = 0;              // how many the array holds
  failure why = failure::none;
  size_t at = 0;             // not_json: the byte offset where the text stops being JSON
  kind found = kind::array;  // not_array: what the text is instead
  bool ok() const { return why == failure::none; }
};

// Reads text that must be exactly one JSON array, checking every element is JSON but decoding
// none: each is left to be read on its own (a batch's events, each judged by itself). Only the
// first `kept_at_most` elements are kept: a 5 MiB array of two and a half million zeros would
// otherwise take some 100 MiB of memory to be refused for its length.
array_result read_array(std::string_view text,
                        size_t kept_at_most = std::numeric_limits<size_t>::max());

} // namespace uas::json
