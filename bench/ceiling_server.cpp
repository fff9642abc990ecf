// The ceiling for this stack: cpp-httplib with the service's server settings, answering every
// POST /events/generate with a fixed 201 and doing nothing else.
#include <iostream>

#include "core/config.hpp"
#include "http/tuning.hpp"

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 3100;
  httplib::Server server;
  // As many threads as the service has by default.
  auto defaults = uas::load_config([](const std::string&) { return std::nullopt; });
  uas::tune_for_load(server, {static_cast<size_t>(defaults.http_threads),
                              static_cast<size_t>(defaults.http_max_threads)});
  server.Post("/events/generate", [](const httplib::Request&, httplib::Response& res) {
    res.status = 201;
    res.set_content(R"({"eventId":"3b6f1c4e-0000-4000-8000-000000000001"})", "application/json");
  });
  if (uas::bind_for_load(server, "127.0.0.1", port) < 0) {
    std::cerr << "cannot listen on " << port << "\n";
    return 1;
  }
  server.listen_after_bind();
}
