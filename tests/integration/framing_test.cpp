// HTTP/1.1 framing as a hostile or broken client sends it, over plain sockets: a request whose
// length can be read two ways is refused and its connection closed (no request smuggling past a
// proxy that reads it the other way), an answer that says `Connection: close` closes, and
// pipelined requests do not leave their client hanging.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <unistd.h>

#include "raw_client.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using namespace uas::testing::raw;
using json = nlohmann::json;

namespace {

const std::string event_body = R"({"userId":"smuggler","eventType":"LOGIN"})"; // 41 bytes
const std::string health = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";

// Sends `request` on a new connection; every answer that comes before the connection closes
// (or 3 s pass), and whether the service closed it.
struct exchange {
  std::vector<std::string> statuses;
  std::string text;
  bool closed;
};
exchange send_raw(int port, const std::string& request) {
  int fd = connect_local(port);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, request));
  auto text = read_answers(fd, 8, std::chrono::milliseconds{3000});
  bool closed = closed_by_service(fd, std::chrono::milliseconds{100});
  close(fd);
  return {status_lines(text), text, closed};
}

double published(const service_process& service) {
  auto r = service.client().Get("/metrics");
  REQUIRE(r);
  auto at = r->body.find("\nevents_published_total ");
  REQUIRE(at != std::string::npos);
  return std::stod(r->body.substr(at + 24));
}

} // namespace

TEST_CASE("a request whose length can be read two ways is refused, and its connection closed") {
  service_process service;
  const std::string head = "POST /events/generate HTTP/1.1\r\nHost: localhost\r\n"
                           "Content-Type: application/json\r\n";
  // What follows each request's headers is, read one way, its body; read the other, the start
  // of a request of its own.
  std::string chunked = "29\r\n" + event_body + "\r\n0\r\n\r\n";
  std::vector<std::pair<std::string, std::string>> cases = {
    {"Content-Length and Transfer-Encoding",
     head + "Content-Length: 41\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + health},
    {"two different Content-Lengths",
     head + "Content-Length: 41\r\nContent-Length: 5\r\n\r\n" + event_body + health},
    {"a Content-Length with a sign", head + "Content-Length: +41\r\n\r\n" + event_body + health},
    {"a Transfer-Encoding other than chunked",
     head + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked + health},
  };
  for (auto& [name, request] : cases) {
    INFO(name);
    auto answer = send_raw(service.port(), request);
    CHECK(answer.statuses == std::vector<std::string>{"HTTP/1.1 400 Bad Request"});
    CHECK_THAT(answer.text, Catch::Contains("Ambiguous request framing"));
    CHECK(answer.closed);
  }
  CHECK(published(service) == 0);
  // The same request framed one way only is taken.
  auto plain = send_raw(service.port(), head + "Content-Length: 41\r\nConnection: close\r\n\r\n" + event_body);
  CHECK(plain.statuses == std::vector<std::string>{"HTTP/1.1 201 Created"});
}

TEST_CASE("an answer that says Connection: close closes the connection, whatever the client sends next") {
  service_process service;
  // A body in chunks for a route that reads none: answered 405 unread, with Connection: close.
  // The client sends on regardless; what it sends must not be answered, nor the body's bytes be
  // read as requests.
  auto answer = send_raw(service.port(),
                         "POST /health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "5\r\nhello\r\n0\r\n\r\n" + health + health);
  CHECK(answer.statuses == std::vector<std::string>{"HTTP/1.1 405 Method Not Allowed"});
  CHECK_THAT(answer.text, Catch::Contains("Connection: close"));
  CHECK(answer.closed);
  // A GET with a body httplib does not read: answered, and closed for the same reason.
  auto get = send_raw(service.port(),
                      "GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(health.size())
                        + "\r\n\r\n" + health);
  CHECK(get.statuses == std::vector<std::string>{"HTTP/1.1 200 OK"});
  CHECK(get.closed);
  // A request line that is not HTTP: 400, and closed, for where the next request starts is unknown.
  auto garbage = send_raw(service.port(), "HELLO\r\n\r\n" + health);
  CHECK(garbage.statuses == std::vector<std::string>{"HTTP/1.1 400 Bad Request"});
  CHECK(garbage.closed);
}

TEST_CASE("pipelined requests: the first is answered and the connection closed within about a second") {
  service_process service;
  // cpp-httplib answers one request per read; the ones that came with it are lost. Its client
  // must learn so soon, by the connection closing, and retry.
  int fd = connect_local(service.port());
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, health + health + health + health));
  auto first = read_answers(fd, 1);
  auto answered = std::chrono::steady_clock::now();
  CHECK(status_lines(first) == std::vector<std::string>{"HTTP/1.1 200 OK"});
  CHECK(closed_by_service(fd, std::chrono::milliseconds{1500}));
  auto waited = std::chrono::steady_clock::now() - answered;
  CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
  CHECK(waited < std::chrono::milliseconds{1200});
  close(fd);
}
