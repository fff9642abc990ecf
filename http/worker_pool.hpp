// The HTTP server's worker threads. cpp-httplib serves a connection on one thread from its first
// request to its close, so a client that is slow, idle or hostile holds a thread: this pool starts
// another while every thread is busy, so that such clients cannot lock the others out.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include <httplib.h>

namespace uas {

// How busy the pool is, for /metrics; it outlives the pool (httplib makes one per listen).
struct pool_load {
  std::atomic<size_t> threads{0}; // running, busy or idle
  std::atomic<size_t> waiting{0}; // connections in line: every thread busy, the cap reached
};

// `warm` threads started at once and kept; one more started whenever a connection arrives while
// every thread is busy, up to `max`; beyond that connections wait in line for a thread. A thread
// that has had nothing to do for `linger` ends, as long as more than `warm` are left.
// httplib's task queue interface (Server::new_task_queue), so it works for any Server, the
// SSLServer included.
class worker_pool final : public httplib::TaskQueue {
public:
  worker_pool(size_t warm, size_t max, std::chrono::milliseconds linger,
              std::shared_ptr<pool_load> load);
  ~worker_pool() override;

  // Called by httplib's accepting thread with each accepted connection.
  void enqueue(std::function<void()> serve) override;

  // Lets the threads finish their connections and those still in line (httplib, stopped, closes
  // them at once), and waits until every thread has ended.
  void shutdown() override;

private:
  void start_thread(); // under mutex_
  void work();
  void publish(); // under mutex_

  const size_t warm_, max_;
  const std::chrono::milliseconds linger_;
  const std::shared_ptr<pool_load> load_;
  std::mutex mutex_;
  std::condition_variable wake_;  // a connection to serve, or stopping
  std::condition_variable ended_; // the last thread has ended
  std::deque<std::function<void()>> connections_;
  size_t threads_ = 0; // running
  size_t idle_ = 0;    // waiting for a connection
  bool stopping_ = false;
};

} // namespace uas
