#include "core/reply_box.hpp"

#include <cerrno>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace uas {

namespace {

// The futex word is the atomic's own storage (std::atomic<uint32_t> is lock-free, one word).
uint32_t* word(std::atomic<uint32_t>& a) { return reinterpret_cast<uint32_t*>(&a); }

} // namespace

void answer_signal::raise() {
  // Release: the waiter that sees `answered` sees what was written before.
  if (state_.exchange(answered, std::memory_order_acq_rel) == waiter_asleep)
    syscall(SYS_futex, word(state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

bool answer_signal::wait(std::chrono::milliseconds interval, const std::function<bool()>& give_up) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(interval);
  timespec timeout{static_cast<time_t>(seconds.count()),
                   static_cast<long>(std::chrono::nanoseconds{interval - seconds}.count())};
  for (;;) {
    uint32_t seen = state_.load(std::memory_order_acquire);
    if (seen == answered)
      return true;
    if (seen == unanswered
        && !state_.compare_exchange_strong(seen, waiter_asleep, std::memory_order_acq_rel))
      continue; // answered meanwhile
    // Sleeps only while the word still says a waiter is asleep; any answer changes it first.
    if (syscall(SYS_futex, word(state_), FUTEX_WAIT_PRIVATE, waiter_asleep, &timeout, nullptr, 0)
          == -1
        && errno == ETIMEDOUT && state_.load(std::memory_order_acquire) != answered
        && give_up())
      return false;
  }
}

} // namespace uas
