#include "raw_client.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace uas::testing::raw {

namespace {

using clock = std::chrono::steady_clock;

milliseconds left_until(clock::time_point deadline) {
  return std::max(milliseconds{0},
                  std::chrono::duration_cast<milliseconds>(deadline - clock::now()));
}

bool wait_readable(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

// Where the answer starting at `from` ends, or npos while it is not whole.
size_t answer_end(const std::string& text, size_t from) {
  auto head_end = text.find("\r\n\r\n", from);
  if (head_end == std::string::npos)
    return std::string::npos;
  size_t length = 0;
  auto head = text.substr(from, head_end - from);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (auto at = lower.find("\r\ncontent-length:"); at != std::string::npos)
    length = std::stoul(head.substr(at + 17));
  auto end = head_end + 4 + length;
  return end <= text.size() ? end : std::string::npos;
}

} // namespace

void allow_open_files(size_t files) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= files)
    return;
  limit.rlim_cur = std::min<rlim_t>(files, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
}

int connect_local(int port, milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target);
  pollfd p{fd, POLLOUT, 0};
  int error = -1;
  socklen_t size = sizeof error;
  if (poll(&p, 1, static_cast<int>(timeout.count())) != 1
      || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool send_all(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                       milliseconds timeout) {
  std::string got;
  auto deadline = clock::now() + timeout;
  char buf[4096];
  while (!done(got)) {
    if (!wait_readable(fd, left_until(deadline)))
      break;
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

std::string read_answers(int fd, size_t count, milliseconds timeout) {
  return read_until(fd, [count](const std::string& got) {
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      at = answer_end(got, at);
      if (at == std::string::npos)
        return false;
    }
    return true;
  }, timeout);
}

std::vector<std::string> status_lines(const std::string& answers) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < answers.size()) {
    lines.push_back(answers.substr(at, answers.find("\r\n", at) - at));
    at = answer_end(answers, at);
  }
  return lines;
}

bool closed_by_service(int fd, milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  char buf[4096];
  while (wait_readable(fd, left_until(deadline))) {
    auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      return true;
    return false; // something more was written
  }
  return false;
}

fresh_answer fresh_post(int port, milliseconds timeout) {
  auto began = clock::now();
  std::string status = "no connection";
  if (int fd = connect_local(port, timeout); fd >= 0) {
    std::string body = R"({"userId":"fresh","eventType":"LOGIN"})";
    status = "send failed";
    if (send_all(fd, "POST /events/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                     "application/json\r\nContent-Length: " + std::to_string(body.size())
                     + "\r\n\r\n" + body)) {
      auto answer = read_until(fd, [](auto& got) { return got.find("\r\n") != std::string::npos; },
                               left_until(began + timeout));
      status = answer.substr(0, answer.find("\r\n"));
    }
    close(fd);
  }
  return {status, std::chrono::duration_cast<milliseconds>(clock::now() - began)};
}

hostile_clients::hostile_clients(int port, kind k, size_t count)
  : port_{port}, kind_{k}, count_{count} {
  allow_open_files(count + 256);
  driver_ = std::thread{[this] { run(); }};
}

hostile_clients::~hostile_clients() {
  stop_ = true;
  driver_.join();
}

bool hostile_clients::wait_connected(milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (connected_.load() < count_ && clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds{20});
  return connected_.load() >= count_;
}

void hostile_clients::run() {
  const std::string slow_headers =
    "POST /events/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    "Content-Length: 100\r\n\r\n";
  const std::string asking = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
  const std::string trickled_header = "X-Slow: y\r\n";
  const auto pause = kind_ == kind::keep_asking ? milliseconds{200} : milliseconds{2000};
  struct connection {
    int fd = -1;
    clock::time_point next;
    size_t trickled = 0;
  };
  std::vector<connection> connections(count_);
  // First bytes, on a fresh connection.
  auto open = [&](connection& c) {
    c.fd = connect_local(port_);
    c.trickled = 0;
    c.next = clock::now() + pause;
    if (c.fd < 0)
      return false;
    return send_all(c.fd, kind_ == kind::slow_body ? slow_headers
                          : kind_ == kind::keep_asking ? asking
                                                       : "GET /health HTTP/1.1\r\n");
  };
  for (auto& c : connections) {
    if (stop_)
      break;
    connected_ += open(c);
  }
  std::vector<pollfd> polled(connections.size());
  char sink[4096];
  while (!stop_) {
    for (size_t i = 0; i < connections.size(); ++i)
      polled[i] = {connections[i].fd, POLLIN, 0};
    poll(polled.data(), polled.size(), 50);
    auto now = clock::now();
    for (size_t i = 0; i < connections.size(); ++i) {
      auto& c = connections[i];
      if (c.fd < 0)
        continue;
      bool closed = false;
      if (polled[i].revents != 0) {
        auto n = recv(c.fd, sink, sizeof sink, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno != EAGAIN);
      }
      if (!closed && now >= c.next) {
        c.next = now + pause;
        if (kind_ == kind::keep_asking)
          closed = !send_all(c.fd, asking);
        else if (kind_ == kind::slow_body)
          closed = !send_all(c.fd, "x");
        else
          closed = !send_all(c.fd, std::string(1, trickled_header[c.trickled++ % trickled_header.size()]));
      }
      if (closed) {
        close(c.fd);
        c.fd = -1;
        if (kind_ != kind::slow_body)
          open(c); // hostile clients come back
      }
    }
  }
  for (auto& c : connections)
    if (c.fd >= 0)
      close(c.fd);
}

} // namespace uas::testing::raw
