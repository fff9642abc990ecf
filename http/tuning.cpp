#include "http/tuning.hpp"

#include <chrono>
#include <memory>
#include <string>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>

namespace uas {

namespace {

using std::chrono::steady_clock;

// How long a thread beyond the warm ones stays after its last connection: a burst of clients
// that reconnect soon finds it still there.
constexpr auto thread_linger = std::chrono::seconds{30};

// How long httplib keeps a connection open waiting for its next request. httplib does not
// pipeline: the requests that came in one read with the first are lost, and the client learns
// it only when the connection closes, so this is also how long a pipelining client waits before
// it retries. Meanwhile the idle connection holds a thread that polls its socket every 11 ms.
// A client pool that pauses longer reconnects, which on a LAN costs a fraction of a millisecond.
constexpr time_t keep_alive_seconds = 1;

// When the request this worker thread is answering was read (httplib keeps a request on one
// thread from routing to logging).
thread_local steady_clock::time_point request_began;

bool says_close(const httplib::Response& res) {
  for (auto [it, end] = res.headers.equal_range("Connection"); it != end; ++it)
    if (strcasecmp(it->second.c_str(), "close") == 0)
      return true;
  return false;
}

// httplib sends a handler's `Connection: close` but keeps the connection open, and reads what
// follows as the next request: the rest of a body it left unread, or bytes framed in a way a
// proxy in front may have read differently. A content provider that fails is httplib's one way
// to end a connection after an answer: this one writes the whole body first. (A HEAD answer has
// no body to write; nothing here answers HEAD with close unless the request asked for it, and
// then httplib closes anyway.)
void close_after_writing(httplib::Response& res) {
  if (res.body.empty())
    return;
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  if (!res.has_header("Content-Length"))
    res.set_header("Content-Length", std::to_string(body->size()));
  auto type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type"); // set_content_provider adds it again
  res.set_content_provider(body->size(), type,
                           [body](size_t, size_t, httplib::DataSink& sink) {
                             sink.write(body->data(), body->size());
                             return false;
                           });
}

} // namespace

std::shared_ptr<const pool_load> tune_for_load(httplib::Server& server, thread_counts threads,
                                               answer_logger log, request_screen screen) {
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  server.set_keep_alive_timeout(keep_alive_seconds);
  auto load = std::make_shared<pool_load>();
  server.new_task_queue = [threads, load] {
    return new worker_pool(threads.warm, threads.max, thread_linger, load);
  };
  // Called once a request's headers are read, before its body.
  server.set_pre_routing_handler([screen = std::move(screen)](const httplib::Request& req,
                                                               httplib::Response& res) {
    request_began = steady_clock::now();
    // httplib hands this handler its own request, which is not const: the screen may amend it.
    return screen && screen(const_cast<httplib::Request&>(req), res)
             ? httplib::Server::HandlerResponse::Handled
             : httplib::Server::HandlerResponse::Unhandled;
  });
  // Called for every answer, just before it is written. httplib closes by itself a connection
  // whose request asked it to (and every connection once stopping, when it skips content
  // providers: a body left to one would go unwritten).
  server.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    auto asked = req.get_header_value("Connection");
    bool closing_anyway = asked == "close" || (req.version == "HTTP/1.0" && asked != "Keep-Alive");
    if (!closing_anyway && says_close(res))
      close_after_writing(res);
  });
  // Called once the answer is written, whatever answered: routes, errors, 413s alike.
  server.set_logger([log = std::move(log)](const httplib::Request& req,
                                           const httplib::Response& res) {
    if (log)
      log(req, res, steady_clock::now() - request_began);
  });
  return load;
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
  // speculative connection, a TCP health probe) would otherwise hold a thread for nothing.
  // Failing is harmless: connections are accepted at once.
  int deferred_seconds = 5;
  setsockopt(listening, IPPROTO_TCP, TCP_DEFER_ACCEPT, &deferred_seconds, sizeof deferred_seconds);
  return bound;
}

} // namespace uas
