// cpp-httplib set up for many concurrent clients, hostile ones included. Its defaults stall them:
// Nagle's 40 ms delay, a new connection every 5 requests, 8 worker threads for everyone, and an
// accept queue of 5. The service and the benchmark's ceiling server both use this, so that the
// two compare alike.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <httplib.h>

#include "http/worker_pool.hpp"

namespace uas {

// Told of every answer once it is written, with the time from the request's headers to then.
using answer_logger = std::function<void(const httplib::Request&, const httplib::Response&,
                                         std::chrono::steady_clock::duration)>;

// Shown every request once its headers are read, before httplib reads its body: it may amend the
// request, or answer it (true), in which case the body is not read.
using request_screen = std::function<bool(httplib::Request&, httplib::Response&)>;

// How many HTTP worker threads: `warm` kept, up to `max` while every one is busy.
struct thread_counts {
  size_t warm;
  size_t max;
};

// No Nagle delay; keep-alive connections kept open while they are in use; a worker pool that
// grows while every thread is busy (worker_pool), so that slow, idle or hostile connections only
// cost threads; an answer that says `Connection: close` closes its connection. This needs the
// server's pre-routing and post-routing handlers and its logger (httplib has one of each): what
// the server would do in them goes to `log` and `screen`. Returns the pool's load, as it changes.
std::shared_ptr<const pool_load> tune_for_load(httplib::Server& server, thread_counts threads,
                                               answer_logger log = {}, request_screen screen = {});

// Binds host:port (port 0: any free one) with an accept queue as deep as the system allows,
// accepting a connection once its first bytes arrive; the bound port, or -1.
int bind_for_load(httplib::Server& server, const std::string& host, int port);

} // namespace uas
