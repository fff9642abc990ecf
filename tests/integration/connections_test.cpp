// Many clients connecting at the same moment: the service must not make them wait for the
// kernel's retransmissions while it is busy, nor keep any of them waiting for good when there are
// more of them than HTTP worker threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
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

// Sends GET /health on a connected socket and reads the answer's status line (blocking, with
// a timeout).
std::string health_status_line(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return "send failed";
  std::string answer;
  char buf[512];
  ssize_t n;
  while (answer.find("\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0)
    answer.append(buf, static_cast<size_t>(n));
  return answer.substr(0, answer.find("\r\n"));
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

TEST_CASE("a connection waiting for an HTTP worker thread shows in /metrics") {
  service_process service{{{"HTTP_THREADS", "2"}}};
  // Two keep-alive clients hold both threads; a third connection waits in line.
  auto a = service.client();
  auto b = service.client();
  a.set_keep_alive(true);
  b.set_keep_alive(true);
  REQUIRE(a.Get("/health"));
  REQUIRE(b.Get("/health"));
  int waiting = start_connect(service.port());
  REQUIRE(count_connected({waiting}, std::chrono::milliseconds{2000}) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds{500}); // for the acceptor to queue it
  // Asked on a connection that has its thread. Its turn is over, so the answer also tells it to
  // connect again, which lets the waiting connection in.
  auto scrape = a.Get("/metrics");
  REQUIRE(scrape);
  CHECK_THAT(scrape->body, Catch::Contains("\nhttp_connections_waiting 1\n"));
  CHECK(scrape->get_header_value("Connection") == "close");
  CHECK(health_status_line(waiting) == "HTTP/1.1 200 OK");
  close(waiting);
}
