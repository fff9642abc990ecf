// Runs the built user-activity-service as a child process for integration tests: its own
// embedded broker, a free HTTP port, its log lines captured, and a real HTTP client to talk to it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "kafka/embedded_broker.hpp"

namespace uas::testing {

using namespace std::chrono_literals;

class service_process {
public:
  // Starts the service with `env` on top of a test default (PORT=0, embedded broker) and waits
  // until it listens, unless `wait_ready` is false (for runs that are meant to fail, or a
  // subcommand given in `args`).
  explicit service_process(std::map<std::string, std::string> env = {}, bool wait_ready = true,
                           std::vector<std::string> args = {});
  ~service_process();

  // The port the HTTP server bound and the embedded broker's address, from the start-up log.
  int port() const { return port_; }
  const std::string& broker() const { return broker_; }

  httplib::Client client() const;

  // POSTs a body to /events/generate.
  httplib::Result post_event(const std::string& body,
                             const std::string& content_type = "application/json") const;

  // GET /events/processed, parsed.
  nlohmann::json processed() const;

  // Polls GET /events/processed until `done` holds for it, or `timeout` passes.
  nlohmann::json wait_processed(const std::function<bool(const nlohmann::json&)>& done,
                                std::chrono::milliseconds timeout = 20s) const;

  // Every log line so far.
  std::vector<std::string> lines() const;
  // Waits for a log line containing `text`; the line, or nothing after `timeout`.
  std::optional<std::string> wait_for_line(const std::string& text,
                                           std::chrono::milliseconds timeout = 15s) const;
  size_t count_lines(const std::string& text) const;

  // Sends a signal; returns the exit status once the process ends, or -1 after `timeout`.
  int stop(int signal = 15, std::chrono::milliseconds timeout = 15s);
  // Sends a signal and returns at once: SIGSTOP stalls the whole process, SIGCONT resumes it.
  void signal(int signal);
  // The exit status once the process ends by itself, or -1 after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout);
  bool running();

private:
  // Kills the process if it still runs and collects its output's reader.
  void end();

  pid_t pid_ = -1;
  int status_ = -1;
  int port_ = 0;
  std::string broker_;
  int out_fd_ = -1;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::thread reader_;
};

// A Kafka-protocol broker owned by the test (the same mock cluster the service embeds), for
// services pointed at it as at any external broker: it outlives them, and the test can inject
// faults into it.
struct external_broker {
  static inline const std::string topic = "user-activity-events";
  kafka::embedded_broker broker{topic, 3};

  // A service using this broker.
  service_process start(std::map<std::string, std::string> env = {}, bool wait_ready = true) {
    env["KAFKA_BROKERS"] = broker.address();
    return service_process{env, wait_ready};
  }
  void down() { rd_kafka_mock_broker_set_down(broker.cluster(), 1); }
  void up() { rd_kafka_mock_broker_set_up(broker.cluster(), 1); }
  // kcat reading the whole topic as it is now: one `key<TAB>value` line per message.
  std::string read_topic() const;
};

// `user-activity-service broker`: the embedded broker in a process of its own, as several
// services and Kafka tools share it.
class broker_process {
public:
  explicit broker_process(int partitions = 12, std::map<std::string, std::string> env = {});
  // host:port, the first line the broker printed.
  const std::string& address() const { return address_; }
  // A service using this broker.
  std::unique_ptr<service_process> start(std::map<std::string, std::string> env = {}) const {
    env["KAFKA_BROKERS"] = address_;
    return std::make_unique<service_process>(env);
  }
  service_process& process() { return process_; }

private:
  service_process process_;
  std::string address_;
};

// Asks `done` every `poll` until it holds or `timeout` has passed; whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 20s,
                std::chrono::milliseconds poll = 100ms);

// Runs a shell command; its exit status and everything it printed.
struct command_result {
  int status;
  std::string output;
};
command_result run_command(const std::string& command);

// A version 4 UUID that reads as a number: `<prefix>-0000-4000-8000-<n in 12 digits>`. Each test
// file has a prefix (8 hex digits) of its own, so that its ids are apart from other files'.
std::string numbered_uuid(const std::string& prefix, long long n);

// The event's JSON text as the service puts it on the topic.
std::string event_text(const std::string& id, const std::string& user, const std::string& type);

// Puts `count` events on the topic with kcat, as another producer would: eventIds
// numbered_uuid(id_prefix, first)..., keyed by 50 users (user-0..user-49) so that they spread over
// the partitions as users' events do, every third a PRODUCT_VIEW, the others LOGIN. Whether kcat
// succeeded.
bool produce_events(const std::string& broker, const std::string& id_prefix, int first, int count);

} // namespace uas::testing
