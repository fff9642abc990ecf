#include "http/tuning.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/accepted.hpp"

namespace uas {

namespace {

using std::chrono::steady_clock;

// How long a connection keeps its thread while other connections wait for one, and how long it
// may sit idle then. A turn ends in a reconnection, so it is long next to a request; a
// connection in line waits about one turn for every `max` connections ahead of it.
constexpr auto turn = std::chrono::milliseconds{100};

// How long a request's body may take to arrive, from its headers on, while other connections
// wait for a thread. An event's body comes in one piece; a client that sends it a byte at a
// time holds a thread as long as each byte comes within httplib's read timeout.
constexpr auto body_time = 10 * turn;

// A connection's socket as it was accepted: its number, and the inode that tells whether the
// number still means that socket (a number closed and reused means another).
struct connection_socket {
  int fd = -1;
  dev_t device = 0;
  ino_t inode = 0;

  bool known() const { return fd >= 0; }
};

connection_socket identify(int fd) {
  struct stat st{};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return {};
  return {fd, st.st_dev, st.st_ino};
}

bool same_socket(int fd, const connection_socket& socket) {
  struct stat st{};
  return fstat(fd, &st) == 0 && st.st_dev == socket.device && st.st_ino == socket.inode;
}

// One worker thread's connection, as other threads may see it.
struct seat {
  // Since when its connection has waited for a request (clock ticks): since the thread took it,
  // then since its last answer was written; 0 while a request is being handled, and between
  // connections.
  std::atomic<steady_clock::rep> idle_since{0};
  // Since when the request being read has had its headers, while its body arrives (clock
  // ticks); 0 otherwise, and `cut` once the body is cut short (see request_read).
  std::atomic<steady_clock::rep> reading_since{0};
  static constexpr steady_clock::rep cut = -1;
  std::mutex mutex;
  connection_socket socket; // under mutex; unknown between connections
};

// A seat's connection found idle, or reading a body too slowly, since `since`.
struct stalled_connection {
  seat* holder;
  bool reading; // else idle
  steady_clock::rep since;
  connection_socket socket;

  // Whether it is still as found; a body being read is then marked cut, so that its request,
  // should the rest come before the shut, is not taken.
  bool still_stalled() const {
    if (!reading)
      return holder->idle_since.load() == since;
    auto expected = since;
    return holder->reading_since.compare_exchange_strong(expected, seat::cut);
  }
};

// Shuts the reading side of these connections; httplib then reads the end of the stream and closes
// the connection without an answer (it writes nothing to a socket whose reading side has ended),
// freeing its thread. Each socket is pinned with dup() and known again by its inode before it is
// shut: its number could have been closed and reused meanwhile. An idle connection with bytes
// unread, or one no longer stalled since it was chosen, is left alone: a request, or the rest of
// one, came after all. A request whose bytes come only just after the shut finds the connection
// closed: the race every server that closes idle connections has.
void close_connections(const std::vector<stalled_connection>& stalled) {
  for (auto& c : stalled) {
    int pinned = dup(c.socket.fd);
    if (pinned < 0)
      continue;
    int unread = 0;
    if (same_socket(pinned, c.socket)
        && (c.reading || (ioctl(pinned, FIONREAD, &unread) == 0 && unread == 0))
        && c.still_stalled())
      ::shutdown(pinned, SHUT_RD);
    close(pinned);
  }
}

// The seat of this worker thread, and when it took the connection it is serving.
thread_local seat* my_seat = nullptr;
thread_local steady_clock::time_point turn_began;
// When the request this worker thread is answering was read (httplib keeps a request on one
// thread from routing to logging).
thread_local steady_clock::time_point request_began;

// cpp-httplib serves each connection on one thread from accept to close. This pool has `max`
// of those threads; a connection beyond that waits in line for one to close, and `waiting`
// counts it.
//
// Connections take turns while any waits: an answer on a connection that has had its thread for
// a turn asks its client to close (the post-routing handler in tune_for_load), and the server
// closes a connection idle for a turn (between requests, or before its first request's headers
// are whole) or reading a body for longer than body_time (give_way). Without that, clients that
// keep idle connections open (connection pools, browsers), or that send nothing or next to
// nothing, would hold threads until httplib's 5 s keep-alive or read timeout, a trickling one
// for good.
//
// Its threads run under SCHED_BATCH: a woken worker then waits for a core to come free instead
// of preempting the thread that woke it. The service's scheduler thread wakes one worker per
// acknowledged POST, a produce batch's worth in a row; each used to take its core away
// (docs/performance.md, session 7). Fairness between threads is unchanged.
class connection_threads final : public httplib::TaskQueue {
public:
  connection_threads(size_t max, std::shared_ptr<std::atomic<size_t>> waiting)
    : waiting_{std::move(waiting)}, seats_(max) {
    for (auto& s : seats_)
      threads_.emplace_back([this, &s] { work(s); });
  }

  // Called by httplib's accepting thread right after it accepted the connection.
  void enqueue(std::function<void()> serve) override {
    auto socket = identify(take_accepted());
    {
      std::lock_guard<std::mutex> guard{mutex_};
      connections_.push_back({std::move(serve), socket});
      count_waiting();
    }
    wake_.notify_one();
    give_way();
  }

  // httplib's accepting thread calls this every `turn / 4` that no connection arrives.
  void on_idle() override { give_way(); }

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
  void work(seat& mine) {
    // Once per thread. Failing is harmless: it stays an ordinary thread.
    sched_param normal{};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &normal);
    pthread_setname_np(pthread_self(), "http-worker"); // for top -H, perf and gdb
    my_seat = &mine;
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
      {
        std::lock_guard<std::mutex> guard{mine.mutex};
        mine.socket = connection.socket;
      }
      turn_began = steady_clock::now();
      mine.idle_since = turn_began.time_since_epoch().count();
      connection.serve();
      mine.idle_since = 0;
      mine.reading_since = 0;
      {
        std::lock_guard<std::mutex> guard{mine.mutex};
        mine.socket = {};
      }
      lock.lock();
    }
  }

  // Connections that no idle thread is about to take. Under mutex_.
  void count_waiting() {
    waiting_->store(connections_.size() > idle_ ? connections_.size() - idle_ : 0,
                    std::memory_order_relaxed);
  }

  // While connections wait, closes as many connections as wait among those idle for a turn or
  // reading a body for longer than body_time. Runs on httplib's accepting thread only.
  void give_way() {
    auto wanted = waiting_->load(std::memory_order_relaxed);
    if (wanted == 0)
      return;
    std::vector<stalled_connection> stalled;
    auto now = steady_clock::now().time_since_epoch().count();
    auto ticks = [](auto duration) {
      return std::chrono::duration_cast<steady_clock::duration>(duration).count();
    };
    for (auto& s : seats_) {
      auto idle = s.idle_since.load(), reading = s.reading_since.load();
      bool idle_long = idle != 0 && now - idle >= ticks(turn);
      bool reading_long = reading > 0 && now - reading >= ticks(body_time); // not yet cut
      if (!idle_long && !reading_long)
        continue;
      std::lock_guard<std::mutex> guard{s.mutex};
      if (s.socket.known())
        stalled.push_back({&s, reading_long, reading_long ? reading : idle, s.socket});
      if (stalled.size() == wanted)
        break;
    }
    if (!stalled.empty())
      close_connections(stalled);
  }

  const std::shared_ptr<std::atomic<size_t>> waiting_;
  std::deque<seat> seats_; // one per thread; a deque, for seats do not move
  std::mutex mutex_;
  std::condition_variable wake_;
  struct accepted_connection {
    std::function<void()> serve;
    connection_socket socket; // unknown if the process's accept() was not ours
  };
  std::deque<accepted_connection> connections_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

} // namespace

std::shared_ptr<const std::atomic<size_t>> tune_for_load(httplib::Server& server, size_t threads,
                                                         answer_logger log,
                                                         request_screen screen) {
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  auto waiting = std::make_shared<std::atomic<size_t>>(0);
  server.new_task_queue = [threads, waiting] { return new connection_threads(threads, waiting); };
  // For connection_threads::on_idle, so that an idle connection gives way soon after its turn.
  server.set_idle_interval(std::chrono::duration_cast<std::chrono::microseconds>(turn / 4));
  // Called once a request's headers are read, before its body: from here until its answer is
  // written the connection is busy and keeps its thread, unless its body takes too long to come
  // (until request_read).
  server.set_pre_routing_handler([screen = std::move(screen)](const httplib::Request& req,
                                                               httplib::Response& res) {
    request_began = steady_clock::now();
    my_seat->idle_since = 0;
    my_seat->reading_since = request_began.time_since_epoch().count();
    // httplib hands this handler its own request, which is not const: the screen may amend it.
    return screen && screen(const_cast<httplib::Request&>(req), res)
             ? httplib::Server::HandlerResponse::Handled
             : httplib::Server::HandlerResponse::Unhandled;
  });
  // While connections wait for a thread, an answer on a connection whose turn is over asks its
  // client to close and connect again, so that connections take turns instead of the first
  // `threads` keeping theirs for good. HTTP/1.1 clients close on it; the thread is free once
  // they have.
  server.set_post_routing_handler([waiting](const httplib::Request&, httplib::Response& res) {
    if (waiting->load(std::memory_order_relaxed) > 0 && steady_clock::now() - turn_began > turn)
      res.set_header("Connection", "close");
  });
  // Called once the answer is written, whatever answered: routes, errors, 413s alike.
  server.set_logger([log = std::move(log)](const httplib::Request& req,
                                           const httplib::Response& res) {
    auto now = steady_clock::now();
    if (log)
      log(req, res, now - request_began);
    my_seat->reading_since = 0;
    my_seat->idle_since = now.time_since_epoch().count();
  });
  return waiting;
}

bool request_read() {
  return my_seat == nullptr || my_seat->reading_since.exchange(0) != seat::cut;
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
  // A connection is accepted, and takes a worker thread, once its first bytes arrive, or after
  // this long: HTTP clients speak first, and one that has nothing to say yet (a browser's
  // speculative connection, a TCP health probe) would otherwise hold a thread until httplib's
  // keep-alive timeout. Failing is harmless: connections are accepted at once.
  int deferred_seconds = 5;
  setsockopt(listening, IPPROTO_TCP, TCP_DEFER_ACCEPT, &deferred_seconds, sizeof deferred_seconds);
  return bound;
}

} // namespace uas
