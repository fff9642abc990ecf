// The HTTP server's elastic worker pool on its own, with connections the test holds busy as long
// as it likes: warm threads at once, one more while every thread is busy up to the cap, a line
// beyond it, idle threads beyond the warm ones retiring, and a shutdown that serves what waits.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "http/worker_pool.hpp"

using namespace uas;
using namespace std::chrono_literals;

namespace {

// Connections that stay busy until the test lets them go; counts those served.
struct connections {
  std::mutex mutex;
  std::condition_variable changed;
  bool released = false;
  int started = 0;
  int served = 0;

  std::function<void()> busy() {
    return [this] {
      std::unique_lock<std::mutex> lock{mutex};
      ++started;
      changed.notify_all();
      changed.wait(lock, [this] { return released; });
      ++served;
      changed.notify_all();
    };
  }
  void release() {
    std::lock_guard<std::mutex> guard{mutex};
    released = true;
    changed.notify_all();
  }
  // Waits (at most 5 s) until `n` connections are being served or done.
  bool wait_started(int n) {
    std::unique_lock<std::mutex> lock{mutex};
    return changed.wait_for(lock, 5s, [&] { return started >= n; });
  }
  int count_started() {
    std::lock_guard<std::mutex> guard{mutex};
    return started;
  }
  bool wait_served(int n) {
    std::unique_lock<std::mutex> lock{mutex};
    return changed.wait_for(lock, 5s, [&] { return served >= n; });
  }
};

// Polls `done` for at most 5 s.
template <class Predicate>
bool eventually(Predicate done) {
  for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(5ms))
    if (done())
      return true;
  return done();
}

// Lets freshly started warm threads reach their wait: one still starting is not yet idle, and a
// connection arriving meanwhile gets a thread of its own.
void settle() {
  std::this_thread::sleep_for(300ms);
}

} // namespace

TEST_CASE("warm threads start at once, and a connection finding them all busy gets a thread of its own") {
  auto load = std::make_shared<pool_load>();
  connections work;
  worker_pool pool{2, 8, 10s, load};
  CHECK(load->threads == 2);
  settle();

  for (int i = 0; i < 5; ++i)
    pool.enqueue(work.busy());
  // Five held at once: none waits for another to finish.
  CHECK(work.wait_started(5));
  CHECK(load->threads == 5);
  CHECK(load->waiting == 0);
  work.release();
  CHECK(work.wait_served(5));
}

TEST_CASE("beyond the cap connections wait in line, and are served as threads come free") {
  auto load = std::make_shared<pool_load>();
  connections work;
  worker_pool pool{1, 3, 10s, load};
  for (int i = 0; i < 5; ++i)
    pool.enqueue(work.busy());
  CHECK(work.wait_started(3));
  CHECK(load->threads == 3);
  CHECK(load->waiting == 2);
  std::this_thread::sleep_for(100ms);
  CHECK(work.count_started() == 3); // the two in line have not begun

  work.release();
  CHECK(work.wait_served(5));
  CHECK(eventually([&] { return load->waiting == 0; }));
  CHECK(load->threads == 3);
}

TEST_CASE("threads beyond the warm ones retire once idle for the linger, the warm ones stay") {
  auto load = std::make_shared<pool_load>();
  connections work;
  worker_pool pool{2, 16, 200ms, load};
  settle();
  for (int i = 0; i < 6; ++i)
    pool.enqueue(work.busy());
  CHECK(work.wait_started(6));
  CHECK(load->threads == 6);
  work.release();
  CHECK(work.wait_served(6));
  CHECK(eventually([&] { return load->threads == 2; }));
  std::this_thread::sleep_for(600ms); // three lingers more: the warm ones are kept
  CHECK(load->threads == 2);
}

TEST_CASE("shutdown serves the connections in line and ends every thread") {
  auto load = std::make_shared<pool_load>();
  connections work;
  auto pool = std::make_unique<worker_pool>(1, 2, 10s, load);
  for (int i = 0; i < 4; ++i)
    pool->enqueue(work.busy());
  CHECK(work.wait_started(2));
  std::thread releaser{[&] {
    std::this_thread::sleep_for(100ms);
    work.release();
  }};
  pool->shutdown(); // returns once all four are served and the threads have ended
  CHECK(work.served == 4);
  CHECK(load->threads == 0);
  releaser.join();
  pool.reset();
}
