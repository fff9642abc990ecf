// The ceiling for this stack: cpp-httplib with the service's server settings, answering every
// POST /events/generate with a fixed 201 and doing nothing else.
#include <iostream>

#include <httplib.h>

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 3100;
  httplib::Server server;
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1'000'000);
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  server.Post("/events/generate", [](const httplib::Request&, httplib::Response& res) {
    res.status = 201;
    res.set_content(R"({"eventId":"3b6f1c4e-0000-4000-8000-000000000001"})", "application/json");
  });
  if (!server.listen("127.0.0.1", port)) {
    std::cerr << "cannot listen on " << port << "\n";
    return 1;
  }
}
