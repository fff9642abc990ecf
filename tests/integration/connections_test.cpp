// Many clients connecting at the same moment: the service must not make them wait for the
// kernel's retransmissions while it is busy, nor keep any of them waiting for good, or behind
// idle connections, when there are more of them than HTTP worker threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service_process.hpp"

using namespace uas::testing;

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

// Sends `text` whole on a connected socket.
bool send_all(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// Reads what arrives on `fd` until `done` holds for it, the connection ends or `timeout`
// passes; what was read.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                       std::chrono::milliseconds timeout) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (!done(got)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    pollfd readable{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&readable, 1, static_cast<int>(left.count())) <= 0)
      break;
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

const std::string health_request =
  "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

// Reads the status line of the answer coming on `fd`.
std::string status_line(int fd) {
  auto answer = read_until(fd, [](auto& got) { return got.find("\r\n") != std::string::npos; },
                           std::chrono::milliseconds{10000});
  return answer.substr(0, answer.find("\r\n"));
}

// Sends GET /health on a connected socket and reads the answer's status line.
std::string health_status_line(int fd) {
  return send_all(fd, health_request) ? status_line(fd) : "send failed";
}

// Connects to the service and reads one answer to GET /health on a keep-alive connection.
int connect_and_ask_health(int port) {
  int fd = start_connect(port);
  REQUIRE(count_connected({fd}, std::chrono::milliseconds{2000}) == 1);
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto answer = read_until(fd, [](auto& got) { return got.find("\"ok\"}") != std::string::npos; },
                           std::chrono::milliseconds{5000});
  REQUIRE(answer.rfind("HTTP/1.1 200 OK", 0) == 0);
  return fd;
}

// Connects a client that sends GET /health (with Connection: close) and checks it is answered
// 200 within 1.5 s, though other connections hold every thread; its socket.
int expect_answered_soon(int port) {
  auto began = std::chrono::steady_clock::now();
  int fd = start_connect(port);
  REQUIRE(count_connected({fd}, std::chrono::milliseconds{2000}) == 1);
  CHECK(health_status_line(fd) == "HTTP/1.1 200 OK");
  CHECK(std::chrono::steady_clock::now() - began < std::chrono::milliseconds{1500});
  return fd;
}

// Whether the service closed `fd` (the end of the stream, or a reset) within `timeout`.
bool closed_by_service(int fd, std::chrono::milliseconds timeout) {
  pollfd readable{fd, POLLIN, 0};
  if (poll(&readable, 1, static_cast<int>(timeout.count())) != 1)
    return false;
  char c;
  return recv(fd, &c, 1, 0) <= 0;
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

TEST_CASE("more keep-alive clients than HTTP worker threads take turns, and all are answered") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Six clients that keep their connections and ask again as soon as answered: the first two
  // would hold both threads for good, unless told in turn to connect again.
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
  CHECK(told_to_reconnect > 0);
}

TEST_CASE("idle keep-alive connections give their threads to connections waiting for one") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two clients keep their connections open and idle, the way connection pools and browsers
  // do: they hold both threads. A third client must not wait out their keep-alive timeout (5 s).
  int idle_a = connect_and_ask_health(service.port());
  int idle_b = connect_and_ask_health(service.port());
  int third = expect_answered_soon(service.port());
  // The service closed one of them for it (with nothing sent on it: no half answer).
  CHECK((closed_by_service(idle_a, std::chrono::milliseconds{100})
         || closed_by_service(idle_b, std::chrono::milliseconds{100})));
  for (int fd : {idle_a, idle_b, third})
    close(fd);
}

TEST_CASE("connections on which nothing has been sent take no HTTP worker thread") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two clients connect and say nothing yet, as browsers' speculative connections and TCP
  // health probes do. Given threads, they would hold both until the keep-alive timeout (5 s).
  std::vector<int> silent{start_connect(service.port()), start_connect(service.port())};
  REQUIRE(count_connected(silent, std::chrono::milliseconds{2000}) == 2);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  int asking = expect_answered_soon(service.port());
  // Once they speak, they are answered too.
  for (int fd : silent)
    CHECK(health_status_line(fd) == "HTTP/1.1 200 OK");
  for (int fd : silent)
    close(fd);
  close(asking);
}

TEST_CASE("connections that stall before their first request is whole give way while others wait") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two clients send the start of a request and then nothing more, or a byte now and then, as
  // broken clients and slow-header (Slowloris) attacks do. They hold both threads: httplib alone
  // waits out its read timeouts for them (about 10 s here), and for a client that sends a byte
  // every few seconds, for good.
  std::vector<int> stalled;
  for (int i = 0; i < 2; ++i) {
    int fd = start_connect(service.port());
    REQUIRE(count_connected({fd}, std::chrono::milliseconds{2000}) == 1);
    REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHo"));
    stalled.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  int third = expect_answered_soon(service.port());
  CHECK((closed_by_service(stalled[0], std::chrono::milliseconds{100})
         || closed_by_service(stalled[1], std::chrono::milliseconds{100})));
  for (int fd : stalled)
    close(fd);
  close(third);
}

TEST_CASE("a request still arriving keeps its connection while others wait") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // One client, answered once already, sends a POST's headers and half its body, then pauses;
  // its thread waits for the rest. A waiting connection must get the other, idle, thread and
  // leave this one be.
  std::string body = R"({"userId":"slow","eventType":"LOGIN"})";
  int slow = connect_and_ask_health(service.port());
  REQUIRE(send_all(slow, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/json\r\nContent-Length: "
                           + std::to_string(body.size()) + "\r\n\r\n"
                           + body.substr(0, body.size() / 2)));
  int idle = connect_and_ask_health(service.port());
  int third = expect_answered_soon(service.port());
  CHECK(closed_by_service(idle, std::chrono::milliseconds{100}));
  // Well past a turn later, the rest of the body: the event is taken.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  REQUIRE(send_all(slow, body.substr(body.size() / 2)));
  auto answer = read_until(slow, [](auto& got) { return got.find("\"eventId\"") != std::string::npos; },
                           std::chrono::milliseconds{10000});
  CHECK(answer.rfind("HTTP/1.1 201 Created", 0) == 0);
  for (int fd : {slow, idle, third})
    close(fd);
}

TEST_CASE("a request whose body comes too slowly while others wait is cut short") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two clients send a POST's headers and the start of its body, then nothing more, as a
  // slow-body attack does (a byte every few seconds would hold a thread for good). A third
  // client must get a thread once a body has had a second to come, not wait for them.
  std::string body = R"({"userId":"trickle","eventType":"LOGIN"})";
  std::vector<int> trickling;
  for (int i = 0; i < 2; ++i) {
    int fd = start_connect(service.port());
    REQUIRE(count_connected({fd}, std::chrono::milliseconds{2000}) == 1);
    REQUIRE(send_all(fd, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/json\r\nContent-Length: "
                           + std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 5)));
    trickling.push_back(fd);
  }
  auto began = std::chrono::steady_clock::now();
  int third = start_connect(service.port());
  REQUIRE(count_connected({third}, std::chrono::milliseconds{2000}) == 1);
  CHECK(health_status_line(third) == "HTTP/1.1 200 OK");
  auto waited = std::chrono::steady_clock::now() - began;
  CHECK(waited > std::chrono::milliseconds{700});
  CHECK(waited < std::chrono::milliseconds{2500});
  // One of them was closed, and nothing of its event was published.
  CHECK((closed_by_service(trickling[0], std::chrono::milliseconds{100})
         || closed_by_service(trickling[1], std::chrono::milliseconds{100})));
  auto metrics = service.client().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("\nevents_published_total 0\n") != std::string::npos);
  for (int fd : trickling)
    close(fd);
  close(third);
}

TEST_CASE("a connection waiting for an HTTP worker thread shows in /metrics") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // One client holds a thread with a request whose body has not come yet; another asks again
  // and again on its connection, never idle long enough to be closed. A third connection waits
  // in line.
  int slow = start_connect(service.port());
  REQUIRE(count_connected({slow}, std::chrono::milliseconds{2000}) == 1);
  REQUIRE(send_all(slow, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\n"
                         "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"));
  auto asking = service.client();
  asking.set_keep_alive(true);
  REQUIRE(asking.Get("/health"));
  int waiting = start_connect(service.port());
  REQUIRE(count_connected({waiting}, std::chrono::milliseconds{2000}) == 1);
  REQUIRE(send_all(waiting, health_request));
  // Scrapes on the asking connection see the third wait, until its turn is over: then the
  // answer also tells it to connect again, which lets the waiting connection in.
  bool seen_waiting = false, told_to_reconnect = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds{3000};
  while (!told_to_reconnect && std::chrono::steady_clock::now() < until) {
    auto scrape = asking.Get("/metrics");
    REQUIRE(scrape);
    seen_waiting |= scrape->body.find("\nhttp_connections_waiting 1\n") != std::string::npos;
    told_to_reconnect = scrape->get_header_value("Connection") == "close";
  }
  CHECK(seen_waiting);
  CHECK(told_to_reconnect);
  CHECK(status_line(waiting) == "HTTP/1.1 200 OK");
  for (int fd : {slow, waiting})
    close(fd);
}
