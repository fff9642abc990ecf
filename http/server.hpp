// The REST API on cpp-httplib: routes, status codes and JSON bodies (SPEC, HTTP API). Each route
// becomes a message to the http actor; httplib's worker threads wait for the answer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "core/config.hpp"
#include "actors/messages.hpp"

namespace uas {

class key_ring;

// Why the service is not ready to take traffic; empty when it is.
using readiness_check = std::function<std::vector<std::string>()>;

// False while every Kafka broker is known to be down (the producer client's word on it).
using brokers_check = std::function<bool()>;

class http_server {
public:
  http_server(const config& cfg, caf::actor_system& sys, producer_actor producer,
              store_actor store, readiness_check readiness, brokers_check brokers_up);
  ~http_server();

  // From now on every route but /health and /health/ready asks for one of these keys, with the
  // route's scope (nullptr: every route open again). Safe to call while serving: requests
  // already past the check finish under the keys they were checked with.
  void use_api_keys(std::shared_ptr<const key_ring> keys);

  // The address start() listens on (HOST).
  std::string host() const;

  // Binds the configured HOST and PORT (PORT=0: any free port) and serves on a thread of its
  // own; returns the bound port. Throws if they cannot be bound.
  int start();

  // From now on new requests are answered 503; waits up to `timeout` for those in flight, then
  // answers those still waiting 503 too. Returns how many that were.
  int drain(std::chrono::milliseconds timeout);

  // Closes the listening socket and waits up to `patience` for the server's threads to end (a
  // keep-alive connection ends after the request it is in). Returns how many connections still
  // hold a thread then, 0 once all have ended: clients sending a request too slowly to finish it
  // (slowloris), which only the process's exit ends, since httplib has no way to close another
  // thread's connection.
  size_t stop(std::chrono::milliseconds patience);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace uas
