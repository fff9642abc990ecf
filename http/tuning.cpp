#include "http/tuning.hpp"

#include <sys/socket.h>

namespace uas {

void tune_for_load(httplib::Server& server, size_t threads) {
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
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
  return bound;
}

} // namespace uas
