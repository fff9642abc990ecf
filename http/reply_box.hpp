// Where an HTTP worker thread waits for an actor's answer. The HTTP server's threads are not
// actors, so they hand the http actor a reply box and block on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace uas {

// One answer, handed from an actor to one waiting thread with one system call on each side: a
// futex word the answer flips. Not std::promise: per answer its set_value made a futex call
// that woke nobody (glibc's call_once) and its timed wait one more that failed; nor a condition
// variable, whose waiter wakes up owning a mutex it must then release with another. A system
// call costs a microsecond or more on this VM (docs/performance.md, session 7).
class reply_box {
public:
  // The answer: a body (empty for a publish), or why there is none. Once only.
  void answer(std::string body);
  void fail(std::string why);

  // Waits for the answer, asking `give_up` every `interval` whether to stop waiting; true once
  // answered, false if given up. One thread waits.
  bool wait(std::chrono::milliseconds interval, const std::function<bool()>& give_up);

  // Read once wait() returned true.
  std::string& body() { return body_; }
  const std::string& error() const { return error_; }

private:
  enum state : uint32_t { unanswered, waiter_asleep, answered };

  void settle(std::string body, std::string error);

  std::atomic<uint32_t> state_{unanswered};
  std::string body_;
  std::string error_;
};

} // namespace uas
