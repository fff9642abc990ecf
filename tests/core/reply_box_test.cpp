// The reply box an HTTP worker waits on: it returns the answer whichever side comes first, and
// gives up only when asked to (a shutdown turning a waiting POST into a 503).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/reply_box.hpp"

using namespace uas;
using namespace std::chrono_literals;

namespace {

const auto never = [] { return false; };

} // namespace

TEST_CASE("an answer given before the wait is returned at once", "[reply_box]") {
  reply_box<std::string> box;
  box.answer("[1,2]");
  REQUIRE(box.wait(50ms, never));
  CHECK(box.value() == "[1,2]");
  CHECK(box.error().empty());
}

TEST_CASE("an answer from another thread wakes the waiter", "[reply_box]") {
  for (int i = 0; i < 200; ++i) { // both orders of answer and sleep, many times
    reply_box<std::string> box;
    std::thread answerer{[&] {
      if (i % 2)
        std::this_thread::sleep_for(100us);
      box.fail("broker unreachable");
    }};
    auto started = std::chrono::steady_clock::now();
    REQUIRE(box.wait(10s, never));
    CHECK(std::chrono::steady_clock::now() - started < 5s); // woken, not timed out
    CHECK(box.error() == "broker unreachable");
    CHECK(box.value().empty());
    answerer.join();
  }
}

TEST_CASE("a waiter gives up only when asked, once per interval", "[reply_box]") {
  reply_box<std::string> box;
  std::atomic<int> asked{0};
  auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(box.wait(20ms, [&] { return ++asked == 3; }));
  CHECK(asked == 3);
  CHECK(std::chrono::steady_clock::now() - started >= 60ms);
}

TEST_CASE("an answer arriving while the waiter checks whether to give up is not lost",
          "[reply_box]") {
  reply_box<std::string> box;
  CHECK(box.wait(10ms, [&] {
    box.answer("late");
    return false; // keep waiting: the answer is there
  }));
  CHECK(box.value() == "late");
}
