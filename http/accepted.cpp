#include "http/accepted.hpp"

#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace {

thread_local int last_accepted = -1;

} // namespace

// The executable's symbols come first in every library's symbol lookup, so cpp-httplib's and
// librdkafka's mock broker's accept() land here. It notes the socket for take_accepted, and
// turns Nagle's algorithm off: the mock broker leaves it on, as no real Kafka broker does, and
// a response written in two parts then waits for the client's delayed acknowledgement, up to
// 40 ms (under load: POST p99 27-50 ms instead of 5-7 ms). CMakeLists.txt links this into
// every program, whether or not anything calls take_accepted.
extern "C" int accept(int listener, sockaddr* peer, socklen_t* peer_size) {
  int connection = accept4(listener, peer, peer_size, 0);
  if (connection >= 0) {
    int on = 1; // fails harmlessly on a socket that is not TCP
    setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    last_accepted = connection;
  }
  return connection;
}

namespace uas {

int take_accepted() { return std::exchange(last_accepted, -1); }

} // namespace uas
