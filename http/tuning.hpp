// cpp-httplib set up for many concurrent keep-alive clients. Its defaults stall them: Nagle's
// 40 ms delay, a new connection every 5 requests, 8 worker threads, and an accept queue of 5.
// The service and the benchmark's ceiling server both use this, so that the two compare alike.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <httplib.h>

namespace uas {

// Told of every answer once it is written, with the time from the request's headers to then.
using answer_logger = std::function<void(const httplib::Request&, const httplib::Response&,
                                         std::chrono::steady_clock::duration)>;

// Shown every request once its headers are read, before httplib reads its body: it may amend the
// request, or answer it (true), in which case the body is not read.
using request_screen = std::function<bool(httplib::Request&, httplib::Response&)>;

// No Nagle delay, keep-alive connections kept open, up to `threads` connections served at once
// by workers that do not preempt the thread that wakes them (SCHED_BATCH), and connections
// beyond that taking turns: while any waits, a connection that has had its thread for 100 ms is
// answered with `Connection: close`, one idle for 100 ms (between requests, or before its first
// request's headers are whole) is closed, and so is one whose request's body has taken a second
// to come (see request_read). This needs the server's pre-routing handler and logger (httplib
// has one of each): what the server would do in them goes to `log` and `screen`. Returns how
// many connections wait in line, as it changes.
std::shared_ptr<const std::atomic<size_t>> tune_for_load(httplib::Server& server, size_t threads,
                                                         answer_logger log = {},
                                                         request_screen screen = {});

// Called by a route handler as it begins, on its worker thread: the request has been read whole,
// and its connection keeps its thread until answered, however long that takes (a POST waiting
// out a broker outage). Until then a body that comes too slowly is cut short; false if this
// one was, just as its last bytes came: the handler must not act on it (its connection is
// closing, and any answer is likely lost).
bool request_read();

// Binds host:port (port 0: any free one) with an accept queue as deep as the system allows,
// accepting a connection once its first bytes arrive; the bound port, or -1.
int bind_for_load(httplib::Server& server, const std::string& host, int port);

} // namespace uas
