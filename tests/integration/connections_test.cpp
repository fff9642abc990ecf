// Many clients at once, hostile ones among them: the service must not make them wait for the
// kernel's retransmissions while it is busy, and no client, however slow, idle or ill-behaved,
// may keep a fresh client waiting: every busy connection costs a thread, not a turn.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw_client.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using namespace uas::testing::raw;

namespace {

// Starts a non-blocking connect to 127.0.0.1:port; the socket.
int start_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target);
  return fd;
}

// How many of `fds` finish connecting within `timeout`.
size_t count_connected(const std::vector<int>& fds, std::chrono::milliseconds timeout) {
  std::vector<pollfd> waiting;
  for (int fd : fds)
    waiting.push_back({fd, POLLOUT, 0});
  size_t connected = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!waiting.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || poll(waiting.data(), waiting.size(), static_cast<int>(left.count())) <= 0)
      break;
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (it->revents == 0) {
        ++it;
        continue;
      }
      int error = -1;
      socklen_t size = sizeof error;
      getsockopt(it->fd, SOL_SOCKET, SO_ERROR, &error, &size);
      connected += error == 0;
      it = waiting.erase(it);
    }
  }
  return connected;
}

const std::string health_request =
  "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

// Sends GET /health on a connected socket and reads the answer's status line.
std::string health_status_line(int fd) {
  if (!send_all(fd, health_request))
    return "send failed";
  auto lines = status_lines(read_answers(fd, 1));
  return lines.empty() ? "no answer" : lines[0];
}

// Connects and reads one answer to GET /health on a keep-alive connection; the socket.
int connect_and_ask_health(int port) {
  int fd = connect_local(port);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  REQUIRE(status_lines(read_answers(fd, 1)) == std::vector<std::string>{"HTTP/1.1 200 OK"});
  return fd;
}

// Three fresh clients in a row POST an event, each on a new connection; the middle time of the
// three, each answered 201. One number less at the mercy of a machine shared with others.
std::chrono::milliseconds fresh_post_time(int port) {
  std::vector<std::chrono::milliseconds> took;
  for (int i = 0; i < 3; ++i) {
    auto answer = fresh_post(port);
    CHECK(answer.status == "HTTP/1.1 201 Created");
    took.push_back(answer.took);
  }
  std::sort(took.begin(), took.end());
  return took[1];
}

// Runs `count` hostile connections of a kind against a fresh service, and checks a fresh client
// is answered within `bound` meanwhile.
void expect_fresh_client_answered(hostile_clients::kind kind, size_t count,
                                  std::chrono::milliseconds bound) {
  service_process service;
  hostile_clients hostile{service.port(), kind, count};
  REQUIRE(hostile.wait_connected(std::chrono::seconds{10}));
  std::this_thread::sleep_for(std::chrono::milliseconds{500}); // all of them at it
  auto took = fresh_post_time(service.port());
  CAPTURE(took.count());
  CHECK(took < bound);
}

} // namespace

TEST_CASE("a burst of 256 connections while the service is stalled is queued, then answered") {
  service_process service;
  // Stopped, the service accepts nothing: only the kernel's queue for its listening socket holds
  // the new connections. A queue too short drops their handshakes, and the clients would retry
  // only after a second.
  service.signal(SIGSTOP);
  std::vector<int> fds;
  for (int i = 0; i < 256; ++i)
    fds.push_back(start_connect(service.port()));
  auto connected = count_connected(fds, std::chrono::milliseconds{500});
  service.signal(SIGCONT);
  CHECK(connected == fds.size());

  size_t answered = 0;
  for (int fd : fds) {
    answered += health_status_line(fd) == "HTTP/1.1 200 OK";
    close(fd);
  }
  CHECK(answered == fds.size());
}

TEST_CASE("more keep-alive clients than HTTP_THREADS are each answered, on threads started for them") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Six clients keep their connections and ask again as soon as answered: the first two would
  // hold both threads kept warm for good.
  constexpr int clients = 6;
  std::vector<int> answered(clients, 0);
  std::atomic<int> told_to_reconnect{0};
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{1500};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto c = service.client();
      c.set_keep_alive(true);
      c.set_read_timeout(3, 0);
      while (std::chrono::steady_clock::now() < until) {
        auto res = c.Get("/health");
        if (!res || std::chrono::steady_clock::now() >= until)
          break; // an answer only once the others have gone does not count
        answered[i] += res->status == 200;
        told_to_reconnect += res->get_header_value("Connection") == "close";
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < clients; ++i) {
    INFO("client " << i);
    CHECK(answered[i] > 0);
  }
  CHECK(told_to_reconnect == 0);
  auto metrics = service.client().Get("/metrics");
  REQUIRE(metrics);
  auto at = metrics->body.find("\nhttp_threads ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(metrics->body.substr(at + 14)) >= clients);
}

TEST_CASE("idle keep-alive connections leave others a thread, and are closed after a second") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two clients keep their connections open and idle, the way connection pools and browsers
  // do: they hold both threads kept warm.
  int idle_a = connect_and_ask_health(service.port());
  int idle_b = connect_and_ask_health(service.port());
  auto fresh = fresh_post(service.port());
  CHECK(fresh.status == "HTTP/1.1 201 Created");
  CHECK(fresh.took < std::chrono::milliseconds{1000});
  // httplib's keep-alive timeout, 1 s, ends them, with nothing written.
  CHECK(closed_by_service(idle_a, std::chrono::milliseconds{2000}));
  CHECK(closed_by_service(idle_b, std::chrono::milliseconds{500}));
  close(idle_a);
  close(idle_b);
}

TEST_CASE("connections on which nothing has been sent take no HTTP worker thread") {
  service_process service{{{"HTTP_THREADS", "2"}, {"HTTP_MAX_THREADS", "2"}}};
  // Two clients connect and say nothing yet, as browsers' speculative connections and TCP
  // health probes do. Given threads, they would hold both there are.
  std::vector<int> silent{start_connect(service.port()), start_connect(service.port())};
  REQUIRE(count_connected(silent, std::chrono::milliseconds{2000}) == 2);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  auto fresh = fresh_post(service.port());
  CHECK(fresh.status == "HTTP/1.1 201 Created");
  CHECK(fresh.took < std::chrono::milliseconds{1000});
  // Once they speak, they are answered too.
  for (int fd : silent)
    CHECK(health_status_line(fd) == "HTTP/1.1 200 OK");
  for (int fd : silent)
    close(fd);
}

TEST_CASE("beyond HTTP_MAX_THREADS a connection waits in line, shown in /metrics, and is served") {
  service_process service{{{"HTTP_THREADS", "1"}, {"HTTP_MAX_THREADS", "2"}}};
  // One client holds a thread with a request whose body has not come yet; another holds the
  // second with a keep-alive connection it scrapes on. A third connection waits in line.
  int slow = connect_local(service.port());
  REQUIRE(slow >= 0);
  std::string body = R"({"userId":"slow","eventType":"LOGIN"})";
  REQUIRE(send_all(slow, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/json\r\nContent-Length: "
                           + std::to_string(body.size()) + "\r\n\r\n"));
  auto asking = service.client();
  asking.set_keep_alive(true);
  REQUIRE(asking.Get("/health"));
  int waiting = connect_local(service.port());
  REQUIRE(waiting >= 0);
  REQUIRE(send_all(waiting, health_request));
  bool seen_waiting = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{3000};
  while (!seen_waiting && std::chrono::steady_clock::now() < until) {
    auto scrape = asking.Get("/metrics");
    REQUIRE(scrape);
    seen_waiting = scrape->body.find("\nhttp_connections_waiting 1\n") != std::string::npos;
  }
  CHECK(seen_waiting);
  CHECK_FALSE(closed_by_service(waiting, std::chrono::milliseconds{200})); // still in line
  // The slow request completes: its thread goes to the one in line.
  REQUIRE(send_all(slow, body));
  CHECK(status_lines(read_answers(slow, 1)) == std::vector<std::string>{"HTTP/1.1 201 Created"});
  close(slow);
  CHECK(status_lines(read_answers(waiting, 1)) == std::vector<std::string>{"HTTP/1.1 200 OK"});
  close(waiting);
}

// The hostile clients of issue 27's table, each kind at the count it names: a fresh client is
// answered within a second all the same.
TEST_CASE("500 clients asking again on connections that were told to close do not hold others up") {
  expect_fresh_client_answered(hostile_clients::kind::keep_asking, 500, std::chrono::milliseconds{1000});
}

TEST_CASE("500 request bodies arriving a byte every 2 s do not hold others up") {
  expect_fresh_client_answered(hostile_clients::kind::slow_body, 500, std::chrono::milliseconds{1000});
}

TEST_CASE("500 slowloris connections, reconnecting when closed, do not hold others up") {
  expect_fresh_client_answered(hostile_clients::kind::slowloris, 500, std::chrono::milliseconds{1000});
}

TEST_CASE("SIGTERM with slowloris connections open: the service still stops in time, and exits 0") {
  service_process service;
  auto accepted = service.post_event(R"({"userId":"alice","eventType":"LOGIN"})");
  REQUIRE(accepted);
  REQUIRE(accepted->status == 201);
  hostile_clients hostile{service.port(), hostile_clients::kind::slowloris, 50};
  REQUIRE(hostile.wait_connected(std::chrono::seconds{10}));
  auto signalled = std::chrono::steady_clock::now();
  CHECK(service.stop(SIGTERM, std::chrono::seconds{15}) == 0);
  // Not the 9.5 s watchdog: the server waits 2 s for its connections' threads, then shutdown goes
  // on, and the exit closes the connections still being trickled.
  CHECK(std::chrono::steady_clock::now() - signalled < std::chrono::seconds{7});
  CHECK(service.count_lines("Shutdown took longer") == 0);
  CHECK(service.count_lines("HTTP server stopped") == 1);
  for (auto step : {"Producer flushed", "Consumer closed", "Actors stopped", "Shutdown complete"})
    CHECK(service.count_lines(step) == 1);
}
