#include "http/tuning.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

namespace uas {

namespace {

// How long a connection keeps its thread while other connections wait for one. A turn ends in
// a reconnection, so it is long next to a request; a connection in line waits about one turn
// for every `max` connections ahead of it.
constexpr auto turn = std::chrono::milliseconds{100};

// When this worker thread took the connection it is serving.
thread_local std::chrono::steady_clock::time_point turn_began;

// cpp-httplib serves each connection on one thread from accept to close. This pool has `max`
// of those threads; a connection beyond that waits in line for one to close, and `waiting`
// counts it.
//
// Its threads run under SCHED_BATCH: a woken worker then waits for a core to come free instead
// of preempting the thread that woke it. The service's scheduler thread wakes one worker per
// acknowledged POST, a produce batch's worth in a row; each used to take its core away
// (docs/performance.md, session 7). Fairness between threads is unchanged.
class connection_threads final : public httplib::TaskQueue {
public:
  connection_threads(size_t max, std::shared_ptr<std::atomic<size_t>> waiting)
    : waiting_{std::move(waiting)} {
    for (size_t i = 0; i < max; ++i)
      threads_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> connection) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      connections_.push_back(std::move(connection));
      count_waiting();
    }
    wake_.notify_one();
  }

  // Lets the threads finish their connections and those still in line (httplib, stopped,
  // closes them), then joins them.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

private:
  void work() {
    // Once per thread. Failing is harmless: it stays an ordinary thread.
    sched_param normal{};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
    pthread_setname_np(pthread_self(), "http-worker"); // for top -H, perf and gdb
    std::unique_lock<std::mutex> lock{mutex_};
    for (;;) {
      ++idle_;
      count_waiting();
      wake_.wait(lock, [this] { return stopping_ || !connections_.empty(); });
      --idle_;
      if (connections_.empty())
        return; // stopping, and nothing left to serve
      auto connection = std::move(connections_.front());
      connections_.pop_front();
      count_waiting();
      lock.unlock();
      turn_began = std::chrono::steady_clock::now();
      connection();
      lock.lock();
    }
  }

  // Connections that no idle thread is about to take. Under mutex_.
  void count_waiting() {
    waiting_->store(connections_.size() > idle_ ? connections_.size() - idle_ : 0,
                    std::memory_order_relaxed);
  }

  const std::shared_ptr<std::atomic<size_t>> waiting_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> connections_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

} // namespace

std::shared_ptr<const std::atomic<size_t>> tune_for_load(httplib::Server& server,
                                                         size_t threads) {
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  auto waiting = std::make_shared<std::atomic<size_t>>(0);
  server.new_task_queue = [threads, waiting] { return new connection_threads(threads, waiting); };
  // While connections wait for a thread, an answer on a connection whose turn is over asks its
  // client to close and connect again, so that connections take turns instead of the first
  // `threads` keeping theirs for good. HTTP/1.1 clients close on it; the thread is free once
  // they have.
  server.set_post_routing_handler([waiting](const httplib::Request&, httplib::Response& res) {
    if (waiting->load(std::memory_order_relaxed) > 0
        && std::chrono::steady_clock::now() - turn_began > turn)
      res.set_header("Connection", "close");
  });
  return waiting;
}

int bind_for_load(httplib::Server& server, const std::string& host, int port) {
  // httplib 0.11 listens with a backlog of 5 and hides its socket. When more clients connect at
  // once than that (wrk's 32, a proxy opening its pool) while the acceptor waits for a core, the
  // kernel drops their handshakes and each waits out a retransmission: 200 ms to 1 s. So the
  // socket is noted as httplib creates it, and listen() again deepens its queue.
  int listening = -1;
  server.set_socket_options([&listening](socket_t sock) {
    httplib::default_socket_options(sock);
    listening = sock;
  });
  int bound = port == 0 ? server.bind_to_any_port(host)
                        : (server.bind_to_port(host, port) ? port : -1);
  server.set_socket_options(httplib::default_socket_options);
  if (bound < 0 || ::listen(listening, SOMAXCONN) != 0)
    return -1;
  return bound;
}

} // namespace uas
