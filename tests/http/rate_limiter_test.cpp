// RATE_LIMIT_PER_KEY's token buckets on a clock the test moves: the burst, the refill, the wait
// a refused request is told, batches, and keys apart.
#include <catch2/catch.hpp>

#include "http/rate_limiter.hpp"

using namespace uas;
using namespace std::chrono_literals;

namespace {

const auto start = rate_limiter::clock::time_point{} + 1h;

bool allowed(rate_limiter::clock::duration wait) {
  return wait == rate_limiter::clock::duration::zero();
}

// A wait, to the microsecond (the buckets count in fractions of events).
long long micros(rate_limiter::clock::duration wait) {
  return std::chrono::round<std::chrono::microseconds>(wait).count();
}

} // namespace

TEST_CASE("a key may send a second's worth at once, then one event every 1/rate seconds") {
  rate_limiter limiter{10};
  for (int i = 0; i < 10; ++i)
    CHECK(allowed(limiter.take("a", 1, start)));
  auto wait = limiter.take("a", 1, start);
  CHECK(micros(wait) == 100'000);
  CHECK(wait == limiter.take("a", 1, start)); // a refused request takes nothing
  CHECK_FALSE(allowed(limiter.take("a", 1, start + 99ms)));
  CHECK(allowed(limiter.take("a", 1, start + 100ms)));
  CHECK_FALSE(allowed(limiter.take("a", 1, start + 150ms)));
  // Idle for a minute: the bucket holds a second's worth, no more.
  auto later = start + 1min;
  CHECK(allowed(limiter.take("a", 10, later)));
  CHECK_FALSE(allowed(limiter.take("a", 1, later)));
}

TEST_CASE("a batch counts each of its events") {
  rate_limiter limiter{100};
  CHECK(allowed(limiter.take("a", 60, start)));
  auto wait = limiter.take("a", 50, start);
  CHECK(micros(wait) == 100'000); // 40 left, 10 more come in 0.1 s
  CHECK(allowed(limiter.take("a", 50, start + 100ms)));
}

TEST_CASE("a batch larger than a second's worth goes once the bucket is full, and is paid for after") {
  rate_limiter limiter{100};
  CHECK(allowed(limiter.take("a", 1, start)));
  CHECK(micros(limiter.take("a", 300, start)) == 10'000); // until the bucket is full again
  CHECK(allowed(limiter.take("a", 300, start + 10ms)));
  // 200 owed: the next event waits until the debt is paid and one more token has come.
  CHECK(micros(limiter.take("a", 1, start + 10ms)) == 2'010'000);
  CHECK(allowed(limiter.take("a", 1, start + 2020ms)));
}

TEST_CASE("each key has a bucket of its own") {
  rate_limiter limiter{2};
  CHECK(allowed(limiter.take("a", 2, start)));
  CHECK_FALSE(allowed(limiter.take("a", 1, start)));
  CHECK(allowed(limiter.take("b", 2, start)));
}
