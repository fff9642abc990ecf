#include "core/metrics.hpp"

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

// The entry for `key`, made on first use. Lookups share the lock; only a new entry takes it alone.
template <class Map, class Key, class Make>
typename Map::mapped_type& entry(std::shared_mutex& mutex, Map& map, const Key& key, Make make) {
  {
    std::shared_lock<std::shared_mutex> reading{mutex};
    if (auto it = map.find(key); it != map.end())
      return it->second;
  }
  std::unique_lock<std::shared_mutex> writing{mutex};
  return map.try_emplace(make()).first->second; // entries are never erased, so this one stays
}

} // namespace

void duration_histogram::observe(std::string_view route, std::chrono::nanoseconds d) {
  auto& s = entry(mutex_, by_route_, route, [&] { return std::string{route}; });
  double seconds = std::chrono::duration<double>(d).count();
  size_t bucket = 0;
  while (bucket < bounds.size() && seconds > bounds[bucket])
    ++bucket;
  s.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<uint64_t>(d.count()), std::memory_order_relaxed);
}

void duration_histogram::render(std::string& out, const char* name) const {
  std::shared_lock<std::shared_mutex> guard{mutex_};
  for (auto& [route, s] : by_route_) {
    auto prefix = std::string{name} + "_bucket{route=\"" + label(route) + "\",le=\"";
    // Cumulative counts from one reading of each bucket, so +Inf always equals _count.
    uint64_t count = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      count += s.buckets[i].load(std::memory_order_relaxed);
      out += prefix + number(bounds[i]) + "\"} " + std::to_string(count) + "\n";
    }
    count += s.buckets[bounds.size()].load(std::memory_order_relaxed);
    out += prefix + "+Inf\"} " + std::to_string(count) + "\n";
    double sum = static_cast<double>(s.sum_ns.load(std::memory_order_relaxed)) / 1e9;
    out += std::string{name} + "_sum{route=\"" + label(route) + "\"} " + number(sum) + "\n";
    out += std::string{name} + "_count{route=\"" + label(route) + "\"} " + std::to_string(count)
           + "\n";
  }
}

void request_counter::inc(std::string_view method, std::string_view route, int status,
                          std::string_view api_key) {
  auto key = std::make_tuple(method, route, status, api_key);
  auto& n = entry(mutex_, counts_, key, [&] {
    return std::make_tuple(std::string{method}, std::string{route}, status, std::string{api_key});
  });
  n.fetch_add(1, std::memory_order_relaxed);
}

void request_counter::render(std::string& out, const char* name) const {
  std::shared_lock<std::shared_mutex> guard{mutex_};
  for (auto& [key, n] : counts_) {
    auto& [method, route, status, api_key] = key;
    out += std::string{name} + "{method=\"" + label(method) + "\",route=\"" + label(route)
           + "\",status=\"" + std::to_string(status) + "\",key=\"" + label(api_key) + "\"} "
           + std::to_string(n.load(std::memory_order_relaxed)) + "\n";
  }
}

void labelled_counter::inc(std::string_view value, uint64_t n) {
  entry(mutex_, counts_, value, [&] { return std::string{value}; })
    .fetch_add(n, std::memory_order_relaxed);
}

uint64_t labelled_counter::get(std::string_view value) const {
  std::shared_lock<std::shared_mutex> guard{mutex_};
  auto it = counts_.find(value);
  return it == counts_.end() ? 0 : it->second.load(std::memory_order_relaxed);
}

void labelled_counter::render(std::string& out, const char* name, const char* label_name) const {
  std::shared_lock<std::shared_mutex> guard{mutex_};
  for (auto& [value, n] : counts_)
    out += std::string{name} + "{" + label_name + "=\"" + label(value) + "\"} "
           + std::to_string(n.load(std::memory_order_relaxed)) + "\n";
}

void partition_gauge::replace(std::map<key, int64_t> values) {
  std::lock_guard<std::mutex> guard{mutex_};
  values_ = std::move(values);
}

void partition_gauge::render(std::string& out, const char* name) const {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto& [k, v] : values_)
    out += std::string{name} + "{topic=\"" + label(k.first) + "\",partition=\""
           + std::to_string(k.second) + "\"} " + std::to_string(v) + "\n";
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
  counter_family("events_rejected_total",
                 "Events skipped because the database refused their data (store-rejected).",
                 events_rejected);
  header(out, "http_requests_total", "counter", "HTTP requests answered.");
  http_requests.render(out, "http_requests_total");
  header(out, "http_requests_rejected_total", "counter",
         "Requests answered 503 at once, by reason: in_flight_limit (MAX_IN_FLIGHT events wait "
         "for the broker), brokers_down (every broker is known to be down).");
  http_requests_rejected.render(out, "http_requests_rejected_total", "reason");
  header(out, "http_request_duration_seconds", "histogram", "Time to answer an HTTP request.");
  http_request_duration.render(out, "http_request_duration_seconds");
  gauge_family("store_events", "Events in the memory store.", store_events.get());
  counter_family("store_events_dropped_total",
                 "Events the memory store let go, oldest first, to stay within "
                 "STORE_MEMORY_MAX_EVENTS; their eventIds are no longer deduplicated.",
                 store_events_dropped);
  gauge_family("store_up", "1 while the store reaches its database.",
               !store_up || store_up() ? 1 : 0);
  gauge_family("consumer_assigned_partitions",
               "Partitions of the topic this instance's consumer owns in its group.",
               consumer_assigned_partitions.get());
  header(out, "consumer_lag", "gauge",
         "Messages in a partition this instance owns past the group's committed offset.");
  consumer_lag.render(out, "consumer_lag");
  gauge_family("kafka_up", "1 while the producer reaches a Kafka broker and the consumer is in its group (readiness's Kafka checks).",
               kafka_up && kafka_up() ? 1 : 0);
  gauge_family("producer_in_flight",
               "Events waiting for the broker's answer (new requests get 503 beyond MAX_IN_FLIGHT).",
               producer_in_flight ? producer_in_flight() : 0);
  gauge_family("http_threads",
               "HTTP worker threads running: HTTP_THREADS kept, more while all are busy.",
               http_threads ? static_cast<int64_t>(http_threads()) : 0);
  gauge_family("http_connections_waiting",
               "Open connections waiting for an HTTP worker thread (HTTP_MAX_THREADS are all serving).",
               http_connections_waiting ? static_cast<int64_t>(http_connections_waiting()) : 0);
  return out;
}

registry& global() {
  static registry instance;
  return instance;
}

} // namespace uas::metrics
