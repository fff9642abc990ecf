#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace uas {

rate_limiter::clock::duration rate_limiter::take(const std::string& key, size_t events,
                                                 clock::time_point now) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto [it, added] = buckets_.try_emplace(key, bucket{rate_, now});
  auto& b = it->second;
  if (!added && now > b.filled) {
    double elapsed = std::chrono::duration<double>(now - b.filled).count();
    b.tokens = std::min(rate_, b.tokens + elapsed * rate_);
    b.filled = now;
  }
  double needed = std::min(static_cast<double>(events), rate_);
  constexpr double rounding = 1e-9; // refills add up fractions: 0.1 s of 10/s is 1 event
  if (b.tokens + rounding >= needed) {
    b.tokens -= static_cast<double>(events);
    return clock::duration::zero();
  }
  auto wait = std::chrono::duration<double>((needed - b.tokens) / rate_);
  return std::max(clock::duration{1}, std::chrono::ceil<clock::duration>(wait));
}

} // namespace uas
