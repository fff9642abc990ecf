// Hostile clients against a running service, and what a fresh client sees meanwhile: for each
// kind of hostile connection at 100, 500 and 2,000 of them, the time a new connection's POST
// takes to be answered, the service's HTTP threads and its memory; from those, the memory an HTTP
// thread costs, and what starting a thread costs on this machine. Usage: bench_hostile PORT PID (the service's process, for its memory).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

int connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// Reads until `text` has arrived; what arrived, within 30 s.
std::string read_for(int fd, const std::string& text) {
  std::string got;
  char buf[4096];
  auto deadline = clock_type::now() + std::chrono::seconds{30};
  while (got.find(text) == std::string::npos && clock_type::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) != 1)
      continue;
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// A fresh client's POST on a new connection: milliseconds until its status line, -1 if none.
double fresh_post(int port) {
  auto began = clock_type::now();
  int fd = connect_local(port);
  if (fd < 0)
    return -1;
  std::string body = R"({"userId":"fresh","eventType":"LOGIN"})";
  send_all(fd, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
               "application/json\r\nConnection: close\r\nContent-Length: "
                 + std::to_string(body.size()) + "\r\n\r\n" + body);
  auto answer = read_for(fd, "\r\n");
  close(fd);
  if (answer.rfind("HTTP/1.1 201", 0) != 0)
    return -1;
  return std::chrono::duration<double, std::milli>(clock_type::now() - began).count();
}

// The service's figure `name` from /metrics.
long metric(int port, const std::string& name) {
  int fd = connect_local(port);
  if (fd < 0)
    return -1;
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  auto text = read_for(fd, "\r\n\r\n# never sent: read until the server closes");
  close(fd);
  auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stol(text.substr(at + name.size() + 2));
}

long rss_kib(int pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

enum class kind { keep_asking, slow_body, slowloris };
const char* name_of(kind k) {
  return k == kind::keep_asking ? "keep-asking" : k == kind::slow_body ? "slow-body" : "slowloris";
}

// `count` connections of a kind, driven from one thread until `stop`.
void drive(int port, kind k, size_t count, std::atomic<bool>& stop, std::atomic<size_t>& connected) {
  // Asks to close, then goes on asking on the same connection, as if the answer had not said so.
  const std::string asking = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  const std::string header = "X-Slow: y\r\n";
  auto pause = k == kind::keep_asking ? milliseconds{200} : milliseconds{2000};
  struct connection {
    int fd = -1;
    clock_type::time_point next;
    size_t sent = 0;
  };
  std::vector<connection> all(count);
  auto open = [&](connection& c) {
    c.fd = connect_local(port);
    c.sent = 0;
    c.next = clock_type::now() + pause;
    return c.fd >= 0
           && send_all(c.fd, k == kind::slow_body
                               ? "POST /events/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                                 "application/json\r\nContent-Length: 100\r\n\r\n"
                             : k == kind::keep_asking ? asking : "GET /health HTTP/1.1\r\n");
  };
  for (auto& c : all)
    connected += open(c);
  std::vector<pollfd> polled(all.size());
  char sink[4096];
  while (!stop) {
    for (size_t i = 0; i < all.size(); ++i)
      polled[i] = {all[i].fd, POLLIN, 0};
    poll(polled.data(), polled.size(), 50);
    auto now = clock_type::now();
    for (size_t i = 0; i < all.size(); ++i) {
      auto& c = all[i];
      if (c.fd < 0)
        continue;
      bool closed = false;
      if (polled[i].revents != 0) {
        auto n = recv(c.fd, sink, sizeof sink, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno != EAGAIN);
      }
      if (!closed && now >= c.next) {
        c.next = now + pause;
        closed = !send_all(c.fd, k == kind::keep_asking ? asking
                                 : k == kind::slow_body ? std::string{"x"}
                                                        : std::string(1, header[c.sent++ % header.size()]));
      }
      if (closed) {
        close(c.fd);
        c.fd = -1;
        if (k != kind::slow_body)
          open(c);
      }
    }
  }
  for (auto& c : all)
    if (c.fd >= 0)
      close(c.fd);
}

// What starting a thread that then waits costs here: microseconds each, over 1,000.
double thread_start_us() {
  std::mutex mutex;
  std::condition_variable go;
  bool done = false;
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  auto began = clock_type::now();
  for (int i = 0; i < 1000; ++i)
    threads.emplace_back([&] {
      ++started;
      std::unique_lock<std::mutex> lock{mutex};
      go.wait(lock, [&] { return done; });
    });
  while (started < 1000)
    std::this_thread::yield();
  auto took = std::chrono::duration<double, std::micro>(clock_type::now() - began).count() / 1000;
  {
    std::lock_guard<std::mutex> guard{mutex};
    done = true;
  }
  go.notify_all();
  for (auto& t : threads)
    t.join();
  return took;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_hostile PORT PID\n");
    return 2;
  }
  int port = std::atoi(argv[1]), pid = std::atoi(argv[2]);
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  std::printf("%-12s %6s %10s %10s %8s %9s\n", "kind", "count", "fresh_ms", "fresh_max", "threads",
              "rss_mib");
  std::vector<double> quiet;
  for (int i = 0; i < 5; ++i)
    quiet.push_back(fresh_post(port));
  std::sort(quiet.begin(), quiet.end());
  long idle_threads = metric(port, "http_threads"), idle_rss = rss_kib(pid);
  std::printf("%-12s %6d %10.1f %10.1f %8ld %9.1f\n", "none", 0, quiet[2], quiet[4], idle_threads,
              idle_rss / 1024.0);
  long most_threads = idle_threads, rss_at_most = idle_rss;
  for (auto k : {kind::keep_asking, kind::slow_body, kind::slowloris}) {
    for (size_t count : {100, 500, 2000}) {
      std::atomic<bool> stop{false};
      std::atomic<size_t> connected{0};
      std::thread driver{[&] { drive(port, k, count, stop, connected); }};
      auto deadline = clock_type::now() + std::chrono::seconds{30};
      while (connected < count && clock_type::now() < deadline)
        std::this_thread::sleep_for(milliseconds{50});
      std::this_thread::sleep_for(std::chrono::seconds{1});
      std::vector<double> times;
      for (int i = 0; i < 5; ++i)
        times.push_back(fresh_post(port));
      std::sort(times.begin(), times.end());
      long threads = metric(port, "http_threads");
      long rss = rss_kib(pid);
      if (threads > most_threads)
        most_threads = threads, rss_at_most = rss;
      stop = true;
      driver.join();
      // A failed answer sorts first: it shows as the middle figure only if most failed.
      std::printf("%-12s %6zu %10.1f %10.1f %8ld %9.1f\n", name_of(k), count, times[2],
                  times[0] < 0 ? -1.0 : times[4], threads, rss / 1024.0);
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::seconds{2}); // the service lets them go
    }
  }
  // Memory per HTTP thread: the service's growth at its most threads over its idle self (their
  // connections' buffers included).
  if (most_threads > idle_threads)
    std::printf("rss_per_thread_kib %.1f\n",
                static_cast<double>(rss_at_most - idle_rss) / (most_threads - idle_threads));
  std::printf("thread_start_us %.1f\n", thread_start_us());
}
