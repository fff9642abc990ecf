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
#include <string>
#include <tuple>

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

// Request durations per route, in cumulative buckets.
class duration_histogram {
public:
  static constexpr std::array<double, 12> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,   0.25,   0.5,   1,    5};
  void observe(const std::string& route, std::chrono::nanoseconds d);
  void render(std::string& out, const char* name) const;

private:
  struct series {
    std::array<uint64_t, bounds.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, series> by_route_;
};

// http_requests_total by method, route and status.
class request_counter {
public:
  void inc(const std::string& method, const std::string& route, int status);
  void render(std::string& out, const char* name) const;

private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_;
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
  request_counter http_requests;
  duration_histogram http_request_duration;
  gauge store_events;
  // Read at scrape time: whether the producer reaches at least one broker.
  std::function<bool()> kafka_up;

  std::string render() const;
};

// The one registry of the process.
registry& global();

} // namespace uas::metrics
