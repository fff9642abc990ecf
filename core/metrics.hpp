// The process's Prometheus metrics: counters bumped where each thing happens (actors, HTTP
// server), rendered in the text exposition format (0.0.4) for GET /metrics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace uas::metrics {

struct counter {
  std::atomic<uint64_t> value{0};
  void inc(uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct gauge {
  std::atomic<int64_t> value{0};
  void set(int64_t v) { value.store(v, std::memory_order_relaxed); }
  int64_t get() const { return value.load(std::memory_order_relaxed); }
};

// Request durations per route, in buckets. Each observation touches one bucket and takes the lock
// only to read: HTTP workers answering at once must not queue on the metrics.
class duration_histogram {
public:
  static constexpr std::array<double, 12> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1,    5};
  void observe(std::string_view route, std::chrono::nanoseconds d);
  void render(std::string& out, const char* name) const;

private:
  struct series {
    std::array<std::atomic<uint64_t>, bounds.size() + 1> buckets{}; // not cumulative; last: > 5 s
    std::atomic<uint64_t> sum_ns{0};
  };
  mutable std::shared_mutex mutex_; // guards the map's shape; the series are atomic
  std::map<std::string, series, std::less<>> by_route_;
};

// http_requests_total by method, route, status and API key name ("none" without a valid key).
class request_counter {
public:
  void inc(std::string_view method, std::string_view route, int status, std::string_view api_key);
  void render(std::string& out, const char* name) const;

private:
  mutable std::shared_mutex mutex_; // guards the map's shape; the counts are atomic
  std::map<std::tuple<std::string, std::string, int, std::string>, std::atomic<uint64_t>, std::less<>>
    counts_;
};

// A counter per value of one label (a reason, say), each series made on first use.
class labelled_counter {
public:
  void inc(std::string_view value, uint64_t n = 1);
  uint64_t get(std::string_view value) const;
  void render(std::string& out, const char* name, const char* label) const;

private:
  mutable std::shared_mutex mutex_; // guards the map's shape; the counts are atomic
  std::map<std::string, std::atomic<uint64_t>, std::less<>> counts_;
};

// One value per partition of a topic (consumer_lag): replaced whole as the partitions this
// process owns change, so a partition that moved to another instance leaves the output.
class partition_gauge {
public:
  using key = std::pair<std::string, int32_t>; // topic, partition
  void replace(std::map<key, int64_t> values);
  void render(std::string& out, const char* name) const;

private:
  mutable std::mutex mutex_;
  std::map<key, int64_t> values_;
};

struct registry {
  counter events_published;
  counter events_publish_failed;
  counter producer_retries;
  counter events_consumed;
  counter events_processed;
  counter events_duplicate;
  counter events_malformed;
  counter events_invalid;
  counter events_rejected;
  request_counter http_requests;
  // Requests turned away before any work, by reason (in_flight_limit, brokers_down).
  labelled_counter http_requests_rejected;
  duration_histogram http_request_duration;
  gauge store_events;
  gauge consumer_assigned_partitions;
  partition_gauge consumer_lag;
  counter store_events_dropped;
  // Read at scrape time: whether the store reaches its database (always, in memory).
  std::function<bool()> store_up;
  // Read at scrape time: whether Kafka is fine, as readiness sees it.
  std::function<bool()> kafka_up;
  // Read at scrape time: events handed to the producer and not yet answered.
  std::function<int64_t()> producer_in_flight;
  // Read at scrape time: HTTP worker threads running, and open connections waiting in line for
  // one (HTTP_MAX_THREADS are all serving).
  std::function<size_t()> http_threads;
  std::function<size_t()> http_connections_waiting;

  std::string render() const;
};

// The one registry of the process.
registry& global();

} // namespace uas::metrics
