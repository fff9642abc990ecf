#include "http/worker_pool.hpp"

#include <system_error>
#include <thread>

#include <pthread.h>
#include <sched.h>

#include "core/log.hpp"

namespace uas {

worker_pool::worker_pool(size_t warm, size_t max, std::chrono::milliseconds linger,
                         std::shared_ptr<pool_load> load)
  : warm_{warm}, max_{max < warm ? warm : max}, linger_{linger}, load_{std::move(load)} {
  std::lock_guard<std::mutex> guard{mutex_};
  for (size_t i = 0; i < warm_; ++i)
    start_thread();
  publish();
}

worker_pool::~worker_pool() {
  shutdown();
}

void worker_pool::enqueue(std::function<void()> serve) {
  std::lock_guard<std::mutex> guard{mutex_};
  connections_.push_back(std::move(serve));
  // Idle threads that were woken but have not yet taken theirs still count as idle: a thread is
  // free for this connection only if there are more idle ones than connections in line.
  if (idle_ >= connections_.size())
    wake_.notify_one();
  else if (threads_ < max_)
    start_thread();
  publish();
}

void worker_pool::shutdown() {
  std::unique_lock<std::mutex> lock{mutex_};
  stopping_ = true;
  wake_.notify_all();
  ended_.wait(lock, [this] { return threads_ == 0; });
}

void worker_pool::start_thread() {
  try {
    // Detached: a thread that retires cannot join itself, and shutdown waits for the count.
    std::thread{[this] { work(); }}.detach();
    ++threads_;
  } catch (const std::system_error& e) {
    // Out of threads or memory for a stack: the connection waits for a busy thread instead.
    log::warn("Cannot start an HTTP worker thread",
              {{"threads", static_cast<int64_t>(threads_)}, {"error", e.what()}});
  }
}

void worker_pool::work() {
  // Failing either is harmless. SCHED_BATCH: a worker woken by an acknowledgement waits for a
  // core to come free instead of preempting the scheduler thread that woke it, which has more
  // acknowledgements to hand out (docs/performance.md).
  sched_param normal{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
  pthread_setname_np(pthread_self(), "http-worker"); // for top -H, perf and gdb
  std::unique_lock<std::mutex> lock{mutex_};
  for (;;) {
    ++idle_;
    bool woken = wake_.wait_for(lock, linger_, [this] { return stopping_ || !connections_.empty(); });
    --idle_;
    if (connections_.empty()) {
      if (stopping_ || (!woken && threads_ > warm_))
        break;
      continue;
    }
    auto serve = std::move(connections_.front());
    connections_.pop_front();
    publish();
    lock.unlock();
    serve();
    serve = nullptr; // whatever the connection held goes before the lock is taken again
    lock.lock();
  }
  --threads_;
  publish();
  if (threads_ == 0)
    ended_.notify_all();
}

void worker_pool::publish() {
  load_->threads.store(threads_, std::memory_order_relaxed);
  load_->waiting.store(connections_.size() > idle_ ? connections_.size() - idle_ : 0,
                       std::memory_order_relaxed);
}

} // namespace uas
