// The service's log: one line per happening, as text for people or as JSON objects for log
// pipelines (LOG_FORMAT). The wording of each message is part of the interface (SPEC, Logs).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/config.hpp"

namespace uas::log {

enum class level { trace, debug, info, warn, error };

// A named value on a line: `key=value` in text, a key of the JSON object in json.
struct field {
  std::string_view key;
  std::variant<std::string_view, int64_t> value;
  field(std::string_view k, std::string_view v) : key{k}, value{v} {}
  field(std::string_view k, const std::string& v) : key{k}, value{std::string_view{v}} {}
  field(std::string_view k, const char* v) : key{k}, value{std::string_view{v}} {}
  field(std::string_view k, int64_t v) : key{k}, value{v} {}
  field(std::string_view k, int v) : key{k}, value{int64_t{v}} {}
};

using fields = std::initializer_list<field>;
// Fields gathered at run time, for lines whose fields depend on what is known (a trace id).
using field_list = std::vector<field>;

// Sets level and format; until called, lines go to stdout as text at info.
void init(const std::string& level_name, log_format format);

// Text: `<ts> <level> <msg>: k=v, k=v<tail>`. JSON: {"ts","level","msg":msg+tail, k: v, ...}.
void write(level lvl, std::string_view msg, fields fs = {}, std::string_view tail = {});
void write(level lvl, std::string_view msg, const field_list& fs, std::string_view tail = {});

// Whether a line at `lvl` is written: for lines whose fields cost something to gather.
bool enabled(level lvl);

inline void debug(std::string_view msg, fields fs = {}) { write(level::debug, msg, fs); }
inline void info(std::string_view msg, fields fs = {}) { write(level::info, msg, fs); }
inline void warn(std::string_view msg, fields fs = {}) { write(level::warn, msg, fs); }
inline void error(std::string_view msg, fields fs = {}) { write(level::error, msg, fs); }

} // namespace uas::log
