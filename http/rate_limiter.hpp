// RATE_LIMIT_PER_KEY: a token bucket per API key, counting events (a batch counts each of its
// events), refilled at the limit's rate and holding at most one second's worth.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace uas {

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;

  explicit rate_limiter(int events_per_second) : rate_{static_cast<double>(events_per_second)} {}

  // Takes `events` from the bucket of `key` at `now`. Zero when they may go; else how long until
  // they could, and nothing is taken. A request of more events than a bucket holds goes once the
  // bucket is full and leaves it owing the rest, so it is slowed, never refused for good, and the
  // key's rate over time stays the limit.
  clock::duration take(const std::string& key, size_t events, clock::time_point now = clock::now());

private:
  struct bucket {
    double tokens;
    clock::time_point filled; // when `tokens` was last brought up to date
  };

  const double rate_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_; // one per key name the file ever held
};

} // namespace uas
