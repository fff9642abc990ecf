// Log lines rendered here and written through spdlog's thread-safe stdout sink.
#include "core/log.hpp"

#include <atomic>
#include <cstdio>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/event.hpp"
#include "core/json_object.hpp"

namespace uas::log {

namespace {

std::atomic<level> threshold{level::info};
std::atomic<log_format> current_format{log_format::text};

spdlog::logger& logger() {
  static auto instance = [] {
    auto l = std::make_shared<spdlog::logger>("uas", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    l->set_pattern("%v");               // write() renders the whole line
    l->set_level(spdlog::level::trace); // filtering happens in write()
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *instance;
}

const char* level_name(level lvl) {
  switch (lvl) {
    case level::trace: return "trace";
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

level parse_level(const std::string& name) {
  for (auto lvl : {level::trace, level::debug, level::info, level::warn, level::error})
    if (name == level_name(lvl))
      return lvl;
  return level::info;
}

// A field's value in a text line, its control characters escaped as in JSON (\n, \u001b, ...):
// a value that comes from a client (a userId with a newline in it) must not end the line and
// write one of its own. A backslash stays as it is, so that values read as they are; a JSON
// log line is the exact record.
void append_text_value(std::string& out, std::string_view s) {
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
        out += escaped;
      }
    }
  }
}

template <class Fields>
void render_into(std::string& out, log_format format, std::string_view msg, const Fields& fs,
                 std::string_view tail) {
  if (format == log_format::text) {
    out += msg;
    bool first = true;
    for (auto& f : fs) {
      out += first ? ": " : ", ";
      first = false;
      out += f.key;
      out += '=';
      if (auto s = std::get_if<std::string_view>(&f.value))
        append_text_value(out, *s);
      else
        out += std::to_string(std::get<int64_t>(f.value));
    }
    out += tail;
    return;
  }
  out += ",\"msg\":";
  json::append_string(out, std::string{msg} + std::string{tail});
  for (auto& f : fs) {
    out += ',';
    json::append_string(out, f.key);
    out += ':';
    if (auto s = std::get_if<std::string_view>(&f.value))
      json::append_string(out, *s);
    else
      out += std::to_string(std::get<int64_t>(f.value));
  }
  out += '}';
}

template <class Fields>
void write_line(level lvl, std::string_view msg, const Fields& fs, std::string_view tail) {
  if (!enabled(lvl))
    return;
  std::string line;
  line.reserve(160);
  auto format = current_format.load(std::memory_order_relaxed);
  if (format == log_format::json) {
    line += "{\"ts\":\"";
    line += utc_timestamp_now();
    line += "\",\"level\":\"";
    line += level_name(lvl);
    line += '"';
  } else {
    line += utc_timestamp_now();
    line += ' ';
    line += level_name(lvl);
    line += ' ';
  }
  render_into(line, format, msg, fs, tail);
  logger().log(spdlog::level::info, "{}", line);
}

} // namespace

void init(const std::string& level_name_, log_format format) {
  threshold = parse_level(level_name_);
  current_format = format;
}

bool enabled(level lvl) { return lvl >= threshold.load(std::memory_order_relaxed); }

void write(level lvl, std::string_view msg, fields fs, std::string_view tail) {
  write_line(lvl, msg, fs, tail);
}

void write(level lvl, std::string_view msg, const field_list& fs, std::string_view tail) {
  write_line(lvl, msg, fs, tail);
}

} // namespace uas::log
