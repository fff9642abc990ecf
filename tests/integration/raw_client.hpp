// HTTP spoken byte by byte over plain sockets on 127.0.0.1, for what a well-behaved client
// library would never send: broken framing, pipelining, trickling bodies, thousands of hostile
// connections at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace uas::testing::raw {

using std::chrono::milliseconds;

// Lets this process hold `files` open files (sockets) at least, up to the hard limit.
void allow_open_files(size_t files);

// A connected socket to 127.0.0.1:port, or -1 if connecting took longer than `timeout`.
int connect_local(int port, milliseconds timeout = milliseconds{2000});

// Sends `text` whole.
bool send_all(int fd, const std::string& text);

// Reads what arrives until `done` holds for it, the connection ends or `timeout` passes.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done,
                       milliseconds timeout);

// Reads `count` whole answers (headers, then a body of their Content-Length), or what came
// before the connection ended or `timeout` passed.
std::string read_answers(int fd, size_t count, milliseconds timeout = milliseconds{5000});

// The status lines in what read_answers returned, in order.
std::vector<std::string> status_lines(const std::string& answers);

// Whether the service closed `fd` (the end of the stream, or a reset) within `timeout`, with
// nothing more written on it; it takes what is left to read.
bool closed_by_service(int fd, milliseconds timeout);

// Connects, POSTs an event with a new connection and reads the answer's status line; the time
// all that took. What a fresh client sees while others are hostile.
struct fresh_answer {
  std::string status;
  milliseconds took;
};
fresh_answer fresh_post(int port, milliseconds timeout = milliseconds{20000});

// Hostile connections kept up on a thread of their own until destroyed.
class hostile_clients {
public:
  enum class kind {
    // Keep-alive clients asking again and again on their connection (every 200 ms each),
    // whatever the answers say: `Connection: close` included.
    keep_asking,
    // A POST's headers with `Content-Length: 100`, then a byte of body every 2 s.
    slow_body,
    // A request's headers a byte every 2 s, connecting again whenever closed.
    slowloris,
  };
  hostile_clients(int port, kind k, size_t count);
  ~hostile_clients();
  hostile_clients(const hostile_clients&) = delete;
  hostile_clients& operator=(const hostile_clients&) = delete;

  // Waits until every one has connected and sent its first bytes; false after `timeout`.
  bool wait_connected(milliseconds timeout);

private:
  void run();

  int port_;
  kind kind_;
  size_t count_;
  std::atomic<size_t> connected_{0};
  std::atomic<bool> stop_{false};
  std::thread driver_;
};

} // namespace uas::testing::raw
