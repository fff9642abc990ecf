// The process's Prometheus metrics, each declared once below with its name and help and bumped
// where the thing happens (actors, HTTP server). prometheus-cpp keeps the values and writes the
// text exposition format for GET /metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace uas::metrics {

class counter {
public:
  counter(prometheus::Registry& registry, const std::string& name, const std::string& help);
  void inc(uint64_t n = 1) { value_.Increment(static_cast<double>(n)); }
  uint64_t get() const { return static_cast<uint64_t>(value_.Value()); }

private:
  prometheus::Counter& value_;
};

class gauge {
public:
  gauge(prometheus::Registry& registry, const std::string& name, const std::string& help);
  void set(int64_t v) { value_.Set(static_cast<double>(v)); }
  int64_t get() const { return static_cast<int64_t>(value_.Value()); }

private:
  prometheus::Gauge& value_;
};

// A gauge read at scrape time from whoever knows its value (a client's state, a queue's length);
// 0 while nobody is set to answer.
class scraped_gauge {
public:
  scraped_gauge(prometheus::Registry& registry, const std::string& name, const std::string& help);
  scraped_gauge& operator=(std::function<int64_t()> read);
  void scrape();

private:
  gauge value_;
  std::function<int64_t()> read_;
};

// The series of one family, by their label values in the family's label order. prometheus-cpp's
// Family::Add builds a new metric on every call, even for labels it has, so each series is looked
// up here, under a lock that only a new series takes alone: HTTP workers answering at once must
// not queue on the metrics.
template <class Metric>
class series_of {
public:
  series_of(prometheus::Family<Metric>& family, std::vector<std::string> label_names)
    : family_{family}, label_names_{std::move(label_names)} {}

  template <class... Args>
  Metric& at(std::initializer_list<std::string_view> values, const Args&... args) {
    thread_local std::string key;
    key.clear();
    for (auto v : values)
      key.append(v).push_back('\0');
    {
      std::shared_lock<std::shared_mutex> reading{mutex_};
      if (auto it = series_.find(key); it != series_.end())
        return *it->second;
    }
    std::unique_lock<std::shared_mutex> writing{mutex_};
    if (auto it = series_.find(key); it != series_.end())
      return *it->second;
    std::map<std::string, std::string> labels;
    auto name = label_names_.begin();
    for (auto v : values)
      labels.emplace(*name++, std::string{v});
    return *series_.emplace(key, &family_.Add(labels, args...)).first->second;
  }

private:
  prometheus::Family<Metric>& family_;
  std::vector<std::string> label_names_;
  std::shared_mutex mutex_;
  std::map<std::string, Metric*, std::less<>> series_;
};

// Counters by the values of their labels, each series made on first use.
class labelled_counter {
public:
  labelled_counter(prometheus::Registry& registry, const std::string& name,
                   const std::string& help, std::vector<std::string> label_names);
  void inc(std::initializer_list<std::string_view> values, uint64_t n = 1) {
    series_.at(values).Increment(static_cast<double>(n));
  }
  uint64_t get(std::initializer_list<std::string_view> values) {
    return static_cast<uint64_t>(series_.at(values).Value());
  }

private:
  series_of<prometheus::Counter> series_;
};

// Time to answer an HTTP request, per route.
class duration_histogram {
public:
  duration_histogram(prometheus::Registry& registry, const std::string& name,
                     const std::string& help);
  void observe(std::string_view route, std::chrono::nanoseconds d);

private:
  series_of<prometheus::Histogram> series_;
};

// One value per partition of a topic (consumer_lag): replaced whole as the partitions this
// process owns change, so a partition that moved to another instance leaves the output.
class partition_gauge {
public:
  using key = std::pair<std::string, int32_t>; // topic, partition
  partition_gauge(prometheus::Registry& registry, const std::string& name, const std::string& help);
  void replace(const std::map<key, int64_t>& values);

private:
  prometheus::Family<prometheus::Gauge>& family_;
  std::mutex mutex_;
  std::map<key, prometheus::Gauge*> series_;
};

struct registry {
  // Declared first: every metric below is registered in it as it is made.
  prometheus::Registry families;

  counter events_published{families, "events_published_total", "Events the broker acknowledged."};
  counter events_publish_failed{families, "events_publish_failed_total",
                                "Publishes answered 500 after every retry."};
  counter producer_retries{families, "producer_retries_total",
                           "Publish attempts retried after a failure."};
  counter events_consumed{families, "events_consumed_total", "Messages read from the topic."};
  counter events_processed{families, "events_processed_total", "Events stored for the first time."};
  counter events_duplicate{families, "events_duplicate_total",
                           "Events dropped as duplicates by eventId."};
  counter events_malformed{families, "events_malformed_total",
                           "Messages skipped as unreadable: null, not JSON, not an object."};
  counter events_invalid{families, "events_invalid_total",
                         "Messages skipped as JSON objects that are no valid event."};
  counter events_rejected{
    families, "events_rejected_total",
    "Events skipped because the database refused their data (store-rejected)."};
  // Messages the dead-letter topic acknowledged, by reason (malformed, invalid, unknown-schema,
  // too-large, store-rejected).
  labelled_counter events_dead_lettered{
    families, "events_dead_lettered_total",
    "Messages the consumer could not store, acknowledged on the dead-letter topic, by reason.",
    {"reason"}};
  counter events_dead_letter_failed{
    families, "events_dead_letter_failed_total",
    "Messages the dead-letter topic refused for good (their size): no copy left."};
  // By method, route, status and API key name ("none" without a valid key).
  labelled_counter http_requests{families, "http_requests_total", "HTTP requests answered.",
                                 {"method", "route", "status", "key"}};
  // Requests turned away before any work, by reason.
  labelled_counter http_requests_rejected{
    families, "http_requests_rejected_total",
    "Requests answered 503 at once, by reason: in_flight_limit (MAX_IN_FLIGHT events wait for the "
    "broker), brokers_down (every broker is known to be down).",
    {"reason"}};
  duration_histogram http_request_duration{families, "http_request_duration_seconds",
                                           "Time to answer an HTTP request."};
  gauge store_events{families, "store_events", "Events in the memory store."};
  counter store_events_dropped{
    families, "store_events_dropped_total",
    "Events the memory store let go, oldest first, to stay within STORE_MEMORY_MAX_EVENTS; their "
    "eventIds are no longer deduplicated."};
  scraped_gauge store_up{families, "store_up", "1 while the store reaches its database."};
  gauge consumer_assigned_partitions{
    families, "consumer_assigned_partitions",
    "Partitions of the topic this instance's consumer owns in its group."};
  partition_gauge consumer_lag{
    families, "consumer_lag",
    "Messages in a partition this instance owns past the group's committed offset."};
  scraped_gauge kafka_up{families, "kafka_up",
                         "1 while the producer reaches a Kafka broker and the consumer is in its "
                         "group (readiness's Kafka checks)."};
  scraped_gauge producer_in_flight{
    families, "producer_in_flight",
    "Events waiting for the broker's answer (new requests get 503 beyond MAX_IN_FLIGHT)."};
  scraped_gauge http_threads{
    families, "http_threads",
    "HTTP worker threads running: HTTP_THREADS kept, more while all are busy."};
  scraped_gauge http_connections_waiting{
    families, "http_connections_waiting",
    "Open connections waiting for an HTTP worker thread (HTTP_MAX_THREADS are all serving)."};

  // The text exposition format (0.0.4), the scraped gauges read now.
  std::string render();
};

// The one registry of the process.
registry& global();

} // namespace uas::metrics
