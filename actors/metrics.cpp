#include "actors/metrics.hpp"

#include <cstdio>

namespace uas::metrics {

namespace {

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, int64_t value) {
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Label values here are our own route names and HTTP methods, but escape anyway.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace

void duration_histogram::observe(const std::string& route, std::chrono::nanoseconds d) {
  double seconds = std::chrono::duration<double>(d).count();
  std::lock_guard<std::mutex> guard{mutex_};
  auto& s = by_route_[route];
  for (size_t i = 0; i < bounds.size(); ++i)
    if (seconds <= bounds[i])
      ++s.buckets[i];
  ++s.count;
  s.sum += seconds;
}

void duration_histogram::render(std::string& out, const char* name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& [route, s] : by_route_) {
    auto prefix = std::string{name} + "_bucket{route=\"" + label(route) + "\",le=\"";
    for (size_t i = 0; i < bounds.size(); ++i)
      out += prefix + number(bounds[i]) + "\"} " + std::to_string(s.buckets[i]) + "\n";
    out += prefix + "+Inf\"} " + std::to_string(s.count) + "\n";
    out += std::string{name} + "_sum{route=\"" + label(route) + "\"} " + number(s.sum) + "\n";
    out += std::string{name} + "_count{route=\"" + label(route) + "\"} " + std::to_string(s.count)
           + "\n";
  }
}

void request_counter::inc(const std::string& method, const std::string& route, int status) {
  std::lock_guard<std::mutex> guard{mutex_};
  ++counts_[{method, route, status}];
}

void request_counter::render(std::string& out, const char* name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& [key, n] : counts_) {
    auto& [method, route, status] = key;
    out += std::string{name} + "{method=\"" + label(method) + "\",route=\"" + label(route)
           + "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
}

std::string registry::render() const {
  std::string out;
  auto counter_family = [&](const char* name, const char* help, const counter& c) {
    header(out, name, "counter", help);
    sample(out, name, static_cast<int64_t>(c.get()));
  };
  auto gauge_family = [&](const char* name, const char* help, int64_t value) {
    header(out, name, "gauge", help);
    sample(out, name, value);
  };
  counter_family("events_published_total", "Events the broker acknowledged.", events_published);
  counter_family("events_publish_failed_total", "Publishes answered 500 after every retry.",
                 events_publish_failed);
  counter_family("producer_retries_total", "Publish attempts retried after a failure.",
                 producer_retries);
  counter_family("events_consumed_total", "Messages read from the topic.", events_consumed);
  counter_family("events_processed_total", "Events stored for the first time.", events_processed);
  counter_family("events_duplicate_total", "Events dropped as duplicates by eventId.",
                 events_duplicate);
  counter_family("events_malformed_total",
                 "Messages skipped as unreadable: null, not JSON, not an object.", events_malformed);
  counter_family("events_invalid_total", "Messages skipped as JSON objects that are no valid event.",
                 events_invalid);
  header(out, "http_requests_total", "counter", "HTTP requests answered.");
  http_requests.render(out, "http_requests_total");
  header(out, "http_request_duration_seconds", "histogram", "Time to answer an HTTP request.");
  http_request_duration.render(out, "http_request_duration_seconds");
  gauge_family("store_events", "Events in the store.", store_events.get());
  gauge_family("kafka_up", "1 while the producer reaches a Kafka broker.",
               kafka_up && kafka_up() ? 1 : 0);
  return out;
}

registry& global() {
  static registry instance;
  return instance;
}

} // namespace uas::metrics
