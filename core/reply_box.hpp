// Where an HTTP worker thread waits for an actor's answer. The HTTP server's threads are not
// actors, so they hand the http actor a reply box and block on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/error.hpp>

namespace uas {

// One thread waits until another says the answer is in, with one system call on each side: a
// futex word the answer flips. Not std::promise: per answer its set_value made a futex call that
// woke nobody (glibc's call_once) and its timed wait one more that failed; nor a condition
// variable, whose waiter wakes up owning a mutex it must then release with another. A system
// call costs a microsecond or more on this VM (docs/performance.md, run 7).
class answer_signal {
public:
  // The answer is in; everything written before this is seen by the waiter. Once only.
  void raise();

  // Waits until raised, asking `give_up` every `interval` whether to stop waiting; true once
  // raised, false if given up. One thread waits.
  bool wait(std::chrono::milliseconds interval, const std::function<bool()>& give_up);

private:
  enum state : uint32_t { unanswered, waiter_asleep, answered };

  std::atomic<uint32_t> state_{unanswered};
};

// One answer of type T, or why there is none, handed from an actor to one waiting thread.
template <class T>
class reply_box {
public:
  // Once only, either.
  void answer(T value) {
    value_ = std::move(value);
    signal_.raise();
  }
  // `code`, when the answering actor gave one, lets the waiter tell failures apart by kind
  // (a store_error, say) rather than by wording.
  void fail(std::string why, caf::error code = {}) {
    error_ = std::move(why);
    code_ = std::move(code);
    signal_.raise();
  }

  // Waits for the answer; see answer_signal::wait.
  bool wait(std::chrono::milliseconds interval, const std::function<bool()>& give_up) {
    return signal_.wait(interval, give_up);
  }

  // Read once wait() returned true: the answer, unless error() says why there is none.
  T& value() { return value_; }
  const std::string& error() const { return error_; }
  const caf::error& code() const { return code_; }

private:
  answer_signal signal_;
  T value_{};
  std::string error_;
  caf::error code_;
};

} // namespace uas
