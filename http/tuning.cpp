#include "http/tuning.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

namespace uas {

namespace {

// httplib's pool, its workers running under SCHED_BATCH: a woken worker then waits for a core
// to come free instead of preempting the thread that woke it. The service's scheduler thread
// wakes one worker per acknowledged POST, a produce batch's worth in a row; each used to take
// its core away (docs/performance.md, session 7). Fairness between threads is unchanged.
class batch_thread_pool final : public httplib::TaskQueue {
public:
  explicit batch_thread_pool(size_t threads) : pool_{threads} {}

  void enqueue(std::function<void()> task) override {
    pool_.enqueue([task = std::move(task)] {
      // Once per connection, not per request. Failing is harmless: it stays an ordinary thread.
      sched_param normal{};
      pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
      pthread_setname_np(pthread_self(), "http-worker"); // for top -H, perf and gdb
      task();
    });
  }

  void shutdown() override { pool_.shutdown(); }

private:
  httplib::ThreadPool pool_;
};

} // namespace

void tune_for_load(httplib::Server& server, size_t threads) {
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  server.new_task_queue = [threads] { return new batch_thread_pool(threads); };
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
