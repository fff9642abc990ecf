// cpp-httplib set up for many concurrent keep-alive clients. Its defaults stall them: Nagle's
// 40 ms delay, a new connection every 5 requests, 8 worker threads, and an accept queue of 5.
// The service and the benchmark's ceiling server both use this, so that the two compare alike.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include <httplib.h>

namespace uas {

// No Nagle delay, keep-alive connections kept open, up to `threads` connections served at once
// by workers that do not preempt the thread that wakes them (SCHED_BATCH), and connections
// beyond that taking turns: while any waits, answers carry `Connection: close`. Returns how many
// connections wait in line, as it changes.
std::shared_ptr<const std::atomic<size_t>> tune_for_load(httplib::Server& server, size_t threads);

// Binds host:port (port 0: any free one) with an accept queue as deep as the system allows;
// the bound port, or -1.
int bind_for_load(httplib::Server& server, const std::string& host, int port);

} // namespace uas
