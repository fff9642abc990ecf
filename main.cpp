// user-activity-service: reads its configuration, starts the broker connection (or the embedded
// broker), the four actors and the HTTP server, and shuts them down in order on SIGINT/SIGTERM.
#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "core/config.hpp"
#include "actors/consumer_actor.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "actors/producer_actor.hpp"
#include "actors/store_actor.hpp"
#include "http/server.hpp"
#include "kafka/embedded_broker.hpp"
#include "kafka/rdkafka_consumer.hpp"
#include "kafka/rdkafka_producer.hpp"
#include "kafka/settings.hpp"

namespace {

using namespace uas;
using namespace std::chrono_literals;

constexpr const char* version = UAS_VERSION; // the CMake project's version

// SIGINT/SIGTERM are blocked in every thread and taken synchronously by main (sigwait), so the
// shutdown runs as ordinary code rather than in a signal handler.
sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int usage_error(const std::string& arg) {
  std::cerr << "user-activity-service: unknown argument '" << arg << "' (try --help)\n";
  return 2;
}

void print_help() {
  std::cout << "user-activity-service " << version
            << ": publishes user activity events to Kafka, consumes them back, deduplicates\n"
               "them by eventId and serves them over REST.\n\n"
               "Usage: user-activity-service [--help | --version]\n\n"
            << config_table();
}

void log_start(const config& cfg) {
  log::info("Starting user-activity-service",
            {{"version", version},
             {"env", cfg.app_env},
             {"port", int64_t{cfg.port}},
             {"brokers", cfg.kafka_brokers},
             {"topic", cfg.topic},
             {"group", cfg.consumer_group},
             {"clientId", cfg.client_id},
             {"retries", cfg.producer_retries},
             {"retryBackoffMs", int64_t{cfg.retry_backoff.count()}},
             {"connectionTimeoutMs", int64_t{cfg.connection_timeout.count()}},
             {"requestTimeoutMs", int64_t{cfg.request_timeout.count()}},
             {"httpThreads", cfg.http_threads},
             {"logLevel", cfg.log_level}});
}

int run(const config& cfg) {
  log_start(cfg);
  std::optional<kafka::embedded_broker> embedded;
  std::string bootstrap = cfg.kafka_brokers;
  if (cfg.embedded_broker()) {
    embedded.emplace(cfg.topic, cfg.embedded_partitions);
    bootstrap = embedded->address();
    log::info("Embedded Kafka broker started",
              {{"address", bootstrap},
               {"topic", cfg.topic},
               {"partitions", cfg.embedded_partitions},
               {"watch", "kcat -b " + bootstrap + " -C -t " + cfg.topic}});
  }
  if (auto why = kafka::probe_brokers(cfg, bootstrap); !why.empty()) {
    log::error("Cannot reach Kafka brokers",
               {{"brokers", bootstrap},
                {"timeoutMs", int64_t{cfg.connection_timeout.count()}},
                {"error", why}});
    return 1;
  }
  log::info("Connected to Kafka brokers", {{"brokers", bootstrap}});

  caf::actor_system_config sys_cfg;
  // One scheduler thread: every handler here is short, and the blocking work runs on threads of
  // its own (HTTP workers, librdkafka). A second worker mostly added work stealing and wake-ups:
  // POST throughput on 2 cores rose by a fifth with one (docs/performance.md).
  sys_cfg.set("scheduler.max-threads", size_t{1});
  // With nothing to do, go from the short busy poll straight to waiting on the condition
  // variable the next message signals, instead of 500 naps of 50 µs: a message arriving during a
  // nap waited it out, and each nap is a timer and a wake-up (docs/performance.md, run 7).
  sys_cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  caf::actor_system sys{sys_cfg};
  // The store on a thread of its own, so that none of its work (up to 1,000 events a consumer
  // batch, the eventId index doubling in one step) holds up the acknowledgements waiting on the
  // one scheduler thread (docs/performance.md, run 10).
  auto store_handle = sys.spawn<caf::detached>(store);
  auto producer_client = std::make_shared<kafka::rdkafka_producer>(cfg, bootstrap);
  producer_actor producer_handle = sys.spawn(
    producer, producer_client, retry_policy{cfg.producer_retries, cfg.retry_backoff});
  auto consumer_client = std::make_shared<kafka::rdkafka_consumer>(cfg, bootstrap);
  consumer_actor consumer_handle = sys.spawn(consumer, store_handle, consumer_client);
  consumer_bridge bridge{sys, consumer_handle};
  consumer_client->start(bridge);
  log::info("Consumer subscribed", {{"topic", cfg.topic}, {"group", cfg.consumer_group}});

  auto& m = metrics::global();
  m.kafka_up = [producer_client] { return producer_client->brokers_up(); };
  http_server server{cfg, sys, producer_handle, store_handle, [=] {
    std::vector<std::string> reasons;
    if (!producer_client->brokers_up())
      reasons.push_back("producer cannot reach the Kafka brokers (" + bootstrap + ")");
    if (!consumer_client->joined())
      reasons.push_back("consumer has not joined group " + cfg.consumer_group);
    return reasons;
  }, [producer_client] { return producer_client->brokers_up(); }};
  int port = 0;
  try {
    port = server.start();
  } catch (const std::exception& e) {
    log::error("Cannot start the HTTP server", {{"error", e.what()}});
    consumer_client->stop();
    caf::anon_send_exit(store_handle, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(producer_handle, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(consumer_handle, caf::exit_reason::user_shutdown);
    return 1;
  }
  log::info("HTTP server listening", {{"port", port}});

  auto signals = shutdown_signals();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  auto started = std::chrono::steady_clock::now();
  log::info("Shutdown requested", {{"signal", strsignal(signal_number)}});
  // Past this, something is stuck: leave rather than hang a container stop.
  std::thread{[] {
    std::this_thread::sleep_for(9500ms);
    log::error("Shutdown took longer than 9.5 s; exiting anyway");
    std::_Exit(1);
  }}.detach();

  int unanswered = server.drain(5s);
  log::info("HTTP requests drained", {{"unanswered", unanswered}});
  server.stop();
  m.kafka_up = nullptr; // the registry outlives the producer client
  log::info("HTTP server stopped");
  bool flushed = producer_client->flush(2s);
  log::info(flushed ? "Producer flushed" : "Producer flush timed out");
  consumer_client->stop();
  log::info("Consumer closed: offsets committed, group left");
  for (auto& handle : {caf::actor_cast<caf::actor>(consumer_handle),
                       caf::actor_cast<caf::actor>(producer_handle),
                       caf::actor_cast<caf::actor>(store_handle)})
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
  log::info("Actors stopped");
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  log::info("Shutdown complete", {{"ms", int64_t{elapsed.count()}}});
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_help();
      return 0;
    }
    if (arg == "--version") {
      std::cout << "user-activity-service " << version << "\n";
      return 0;
    }
    return usage_error(arg);
  }
  config cfg;
  try {
    cfg = load_config(process_environment());
  } catch (const config_error& e) {
    std::cerr << "user-activity-service: configuration error: " << e.what() << "\n";
    return 2;
  }
  log::init(cfg.log_level, cfg.format);
  auto signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    log::error("Start-up failed", {{"error", e.what()}});
    return 1;
  }
}
