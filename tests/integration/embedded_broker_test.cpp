// The embedded broker answers without Nagle's delay, as a real Kafka broker does.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kafka/embedded_broker.hpp"

namespace {

int port_of(int fd, bool peer) {
  sockaddr_in addr{};
  socklen_t size = sizeof addr;
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &size)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  return rc == 0 && addr.sin_family == AF_INET ? ntohs(addr.sin_port) : -1;
}

// The broker's end of the connection from local port `client_port`: a socket of this process
// whose peer is that port. -1 until the broker has accepted it.
int accepted_end(int client_port) {
  for (auto& entry : std::filesystem::directory_iterator{"/proc/self/fd"}) {
    int fd = std::stoi(entry.path().filename().string());
    if (port_of(fd, true) == client_port)
      return fd;
  }
  return -1;
}

} // namespace

TEST_CASE("the embedded broker turns Nagle's algorithm off on the connections it accepts") {
  uas::kafka::embedded_broker broker{"nagle-check", 1};
  auto address = broker.address();
  auto colon = address.rfind(':');
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &target.sin_addr);

  int client = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&target), sizeof target) == 0);
  int server_end = -1;
  for (int i = 0; i < 200 && server_end < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
    server_end = accepted_end(port_of(client, false));
  }
  REQUIRE(server_end >= 0);
  int nodelay = 0;
  socklen_t size = sizeof nodelay;
  REQUIRE(getsockopt(server_end, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
  CHECK(nodelay != 0);
  close(client);
}
