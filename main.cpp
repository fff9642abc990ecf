// user-activity-service: reads its configuration, starts the broker connection (or the embedded
// broker), the four actors and the HTTP server, and shuts them down in order on SIGINT/SIGTERM.
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include <sys/resource.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "core/config.hpp"
#include "actors/consumer_actor.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "actors/producer_actor.hpp"
#include "actors/store_actor.hpp"
#include "http/api_keys.hpp"
#include "core/memory_store.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"
#include "kafka/embedded_broker.hpp"
#include "kafka/rdkafka_consumer.hpp"
#include "kafka/rdkafka_producer.hpp"
#include "kafka/settings.hpp"
#include "store/postgres_store.hpp"

namespace {

using namespace uas;
using namespace std::chrono_literals;

constexpr const char* version = UAS_VERSION; // the CMake project's version

// SIGINT/SIGTERM (shut down) and SIGHUP (re-read API_KEYS_FILE) are blocked in every thread and
// taken synchronously by main (sigwait), so what they ask for runs as ordinary code rather than
// in a signal handler.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
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
               "Usage: user-activity-service [--help | --version]\n"
               "       user-activity-service hash-key   (reads an API key on stdin, prints the\n"
               "                                          SHA-256 that API_KEYS_FILE lists)\n"
               "       user-activity-service broker [--partitions N]\n"
               "         the embedded Kafka broker alone, for several instances and Kafka tools on\n"
               "         one machine: prints its host:port first, keeps nothing across restarts\n\n"
            << config_table();
}

// `hash-key`: the key on stdin (one trailing newline dropped, as `echo` and a terminal add one),
// its SHA-256 on stdout. The key itself is never printed, not even in an error.
int hash_key() {
  std::string key{std::istreambuf_iterator<char>{std::cin}, std::istreambuf_iterator<char>{}};
  if (!key.empty() && key.back() == '\n')
    key.pop_back();
  if (!key.empty() && key.back() == '\r')
    key.pop_back();
  std::string why;
  if (!is_acceptable_key(key, why)) {
    std::cerr << "user-activity-service hash-key: refused: " << why << "\n";
    return 2;
  }
  std::cout << to_hex(sha256(key)) << "\n";
  return 0;
}

bool is_loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

// The API keys, or nullptr with no API_KEYS_FILE; throws config_error for a file that will not do.
std::shared_ptr<const key_ring> load_api_keys(const config& cfg) {
  if (cfg.api_keys_file.empty())
    return nullptr;
  return key_ring::load(cfg.api_keys_file);
}

// SIGHUP: the key file read again. A file that will not do changes nothing: the keys in use stay.
void reload_api_keys(const config& cfg, http_server& server) {
  if (cfg.api_keys_file.empty()) {
    log::warn("SIGHUP ignored: no API_KEYS_FILE to re-read");
    return;
  }
  try {
    auto keys = load_api_keys(cfg);
    auto count = static_cast<int64_t>(keys->size());
    server.use_api_keys(std::move(keys));
    log::info("API keys re-read", {{"file", cfg.api_keys_file}, {"keys", count}});
  } catch (const config_error& e) {
    log::error("API keys not re-read; the previous keys stay in use", {{"error", e.what()}});
  }
}

// Every HTTP connection and every Kafka connection is an open file: the soft limit (often 1,024)
// goes up to the hard one, which only root may raise. The limit in force.
int64_t raise_open_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0)
    return -1;
  if (files.rlim_cur < files.rlim_max) {
    rlimit raised{files.rlim_max, files.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      files = raised;
  }
  return files.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(files.rlim_cur);
}

void log_start(const config& cfg, int64_t open_files) {
  log::info("Starting user-activity-service",
            {{"version", version},
             {"env", cfg.app_env},
             {"host", cfg.host},
             {"port", int64_t{cfg.port}},
             {"brokers", cfg.kafka_brokers},
             {"topic", cfg.topic},
             {"group", cfg.consumer_group},
             {"deadLetterTopic", cfg.dlq_topic.empty() ? "(none)" : cfg.dlq_topic},
             {"clientId", cfg.client_id},
             {"retries", cfg.producer_retries},
             {"retryBackoffMs", int64_t{cfg.retry_backoff.count()}},
             {"connectionTimeoutMs", int64_t{cfg.connection_timeout.count()}},
             {"requestTimeoutMs", int64_t{cfg.request_timeout.count()}},
             {"httpThreads", cfg.http_threads},
             {"httpMaxThreads", cfg.http_max_threads},
             {"openFiles", open_files},
             {"logLevel", cfg.log_level},
             {"store", redact_url(cfg.store_url)},
             {"storeRetentionDays", cfg.store_retention_days},
             {"https", cfg.tls() ? "on" : "off"},
             {"apiKeys", cfg.api_keys_file.empty() ? "off (every route open)" : cfg.api_keys_file},
             {"rateLimitPerKey", cfg.rate_limit_per_key},
             {"kafkaSecurityProtocol", cfg.kafka_auth.protocol}});
}

// The dead-letter producer (none when KAFKA_DLQ_TOPIC is empty), and whether its topic exists.
dead_letter_route start_dead_letters(const config& cfg, const std::string& bootstrap) {
  dead_letter_route route{nullptr, cfg.dlq_topic, cfg.consumer_group, cfg.retry_backoff, 30s};
  if (cfg.dlq_topic.empty()) {
    log::info("Dead-letter topic off: messages the consumer cannot store are skipped and logged");
    return route;
  }
  auto client = std::make_shared<kafka::rdkafka_producer>(
    kafka::dead_letter_settings(cfg, bootstrap), cfg.dlq_topic, cfg.connection_timeout);
  if (auto why = client->topic_missing(cfg.connection_timeout); why.empty())
    log::info("Dead-letter topic ready", {{"topic", cfg.dlq_topic}});
  else
    log::warn("Dead-letter topic missing: messages the consumer cannot store wait for it, "
              "their partitions' offsets held",
              {{"topic", cfg.dlq_topic}, {"error", why}});
  route.client = std::move(client);
  return route;
}

int run(const config& cfg, std::shared_ptr<const key_ring> keys) {
  log_start(cfg, raise_open_file_limit());
  std::optional<kafka::embedded_broker> embedded;
  std::string bootstrap = cfg.kafka_brokers;
  if (cfg.embedded_broker()) {
    embedded.emplace(cfg.topic, cfg.embedded_partitions);
    if (!cfg.dlq_topic.empty())
      embedded->create_topic(cfg.dlq_topic, cfg.embedded_partitions);
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

  std::shared_ptr<store_backend> backend;
  if (cfg.memory_store()) {
    backend = std::make_shared<memory_store>(cfg.store_memory_max_events);
  } else {
    try {
      backend = std::make_shared<postgres::store>(cfg.store_url, cfg.connection_timeout,
                                                  cfg.consumer_group);
    } catch (const std::exception& e) {
      log::error("Cannot reach the database", {{"host", url_hosts(cfg.store_url)},
                                               {"timeoutMs", int64_t{cfg.connection_timeout.count()}},
                                               {"error", e.what()}});
      return 1;
    }
    log::info("Connected to the database", {{"host", url_hosts(cfg.store_url)}});
  }

  caf::actor_system_config sys_cfg;
  // One scheduler thread: every handler here is short, and the blocking work runs on threads of
  // its own (HTTP workers, librdkafka). A second worker mostly added work stealing and wake-ups:
  // POST throughput on 2 cores rose by a fifth with one (docs/performance.md).
  sys_cfg.set("scheduler.max-threads", size_t{1});
  // With nothing to do, go from the short busy poll straight to waiting on the condition
  // variable the next message signals, instead of 500 naps of 50 µs: a message arriving during a
  // nap waited it out, and each nap is a timer and a wake-up (docs/performance.md, run 7).
  sys_cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  sys_cfg.add_error_category(store_error_category, render_store_error);
  sys_cfg.add_error_category(publish_error_category, render_publish_error);
  caf::actor_system sys{sys_cfg};
  // The store on a thread of its own: the database's calls block, and none of its work (up to
  // 1,000 events a consumer batch, the memory store's index doubling in one step) may hold up the
  // acknowledgements waiting on the one scheduler thread (docs/performance.md, run 10).
  store_actor store_handle = sys.spawn<caf::detached>(
    store, backend, std::chrono::hours{24 * cfg.store_retention_days});
  auto producer_client = std::make_shared<kafka::rdkafka_producer>(cfg, bootstrap);
  producer_actor producer_handle = sys.spawn(
    producer, producer_client, retry_policy{cfg.producer_retries, cfg.retry_backoff});
  auto dead_letters = start_dead_letters(cfg, bootstrap);
  auto consumer_client = std::make_shared<kafka::rdkafka_consumer>(cfg, bootstrap);
  consumer_actor consumer_handle = sys.spawn(consumer, store_handle, consumer_client, dead_letters);
  consumer_bridge bridge{sys, consumer_handle, store_handle};
  consumer_client->start(bridge);
  log::info("Consumer subscribed", {{"topic", cfg.topic}, {"group", cfg.consumer_group}});

  // Kafka as librdkafka last said (its statistics, at most a second old, or its all-brokers-down
  // error): the one source of readiness's Kafka reasons and of kafka_up, so the two never
  // disagree.
  auto kafka_problems = [=] {
    std::vector<std::string> reasons;
    if (!producer_client->brokers_up())
      reasons.push_back("producer cannot reach the Kafka brokers (" + bootstrap + ")");
    if (!consumer_client->joined())
      reasons.push_back("consumer has not joined group " + cfg.consumer_group);
    return reasons;
  };
  auto readiness = [=] {
    auto reasons = kafka_problems();
    if (!backend->up())
      reasons.push_back("store cannot reach the database (" + url_hosts(cfg.store_url) + ")");
    return reasons;
  };
  auto& m = metrics::global();
  m.kafka_up = [kafka_problems] { return kafka_problems().empty(); };
  m.store_up = [backend] { return backend->up(); };
  http_server server{cfg, sys, producer_handle, store_handle, readiness,
                     [producer_client] { return producer_client->brokers_up(); }};
  if (keys)
    log::info("API keys loaded",
              {{"file", cfg.api_keys_file}, {"keys", static_cast<int64_t>(keys->size())}});
  server.use_api_keys(std::move(keys));
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
  auto host = server.host();
  log::info("HTTP server listening",
            {{"port", port}, {"host", host}, {"scheme", cfg.tls() ? "https" : "http"}});
  if (cfg.api_keys_file.empty() && !is_loopback(host))
    log::warn("No API_KEYS_FILE: every route is open to anyone who can reach this port",
              {{"host", host}, {"port", port}});

  auto signals = handled_signals();
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP)
    reload_api_keys(cfg, server);
  auto started = std::chrono::steady_clock::now();
  log::info("Shutdown requested", {{"signal", strsignal(signal_number)}});
  // Past this, something is stuck: leave rather than hang a container stop.
  std::thread{[] {
    std::this_thread::sleep_for(9500ms);
    log::error("Shutdown took longer than 9.5 s; exiting anyway");
    std::_Exit(1);
  }}.detach();
  // Until then the consumer's last revocation may wait for the store to answer for everything
  // read, so that the partitions go with all of it committed; what is left is for the commit,
  // leaving the group and stopping the actors.
  bridge.close_by(started + 8s);

  int unanswered = server.drain(5s);
  log::info("HTTP requests drained", {{"unanswered", unanswered}});
  auto held = server.stop(2s);
  m.kafka_up = nullptr; // the registry outlives the producer client and the store
  m.store_up = nullptr;
  if (held > 0)
    log::warn("HTTP server stopped with connections still open: the exit closes them",
              {{"connections", static_cast<int64_t>(held)}});
  else
    log::info("HTTP server stopped");
  bool flushed = producer_client->flush(2s);
  log::info(flushed ? "Producer flushed" : "Producer flush timed out");
  // Dead letters acknowledged now have their originals' offsets committed as the consumer closes;
  // any still unacknowledged are read again by the next owner of their partition.
  if (dead_letters.client && !dead_letters.client->flush(1s))
    log::warn("Dead-letter producer flush timed out");
  consumer_client->stop();
  log::info("Consumer closed: offsets committed, group left");
  for (auto& handle : {caf::actor_cast<caf::actor>(consumer_handle),
                       caf::actor_cast<caf::actor>(producer_handle),
                       caf::actor_cast<caf::actor>(store_handle)})
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
  // Nothing waits for the store now: the consumer's closing revocation stopped waiting for its
  // write at the deadline. A database call still running would hold the store's thread, and so
  // the exit, as long as the database takes (a locked table: for ever). Cancelled, a write rolls
  // back whole, neither its events nor their positions stored, and the next owner of their
  // partitions reads them again; one that committed just before is stored with its positions,
  // and the next owner starts after it. Sent after the actors' exits: the consumer ends without
  // taking the cancelled write for an outage.
  if (auto events = backend->cancel(); events && *events > 0)
    log::warn("Database write cancelled at the shutdown deadline: the next owner reads its "
              "events again",
              {{"events", static_cast<int64_t>(*events)}});
  else if (events)
    log::warn("Database call cancelled: the shutdown does not wait for it");
  sys.await_all_actors_done();
  log::info("Actors stopped");
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  log::info("Shutdown complete", {{"ms", int64_t{elapsed.count()}}});
  if (held > 0)
    std::_Exit(0); // their threads still wait on those clients, inside the server
  return 0;
}

// `broker [--partitions N]`: the embedded broker in a process of its own, so that several
// instances (and kcat) can share it. librdkafka's mock broker picks its own free port, so its
// address is the first line on stdout, where scripts read it.
int run_broker(const config& cfg, int partitions) {
  kafka::embedded_broker broker{cfg.topic, partitions};
  // The instances sharing this broker read KAFKA_DLQ_TOPIC as this process does.
  if (!cfg.dlq_topic.empty())
    broker.create_topic(cfg.dlq_topic, partitions);
  std::cout << broker.address() << std::endl;
  log::info("Embedded Kafka broker started",
            {{"address", broker.address()},
             {"topic", cfg.topic},
             {"deadLetterTopic", cfg.dlq_topic.empty() ? "(none)" : cfg.dlq_topic},
             {"partitions", partitions},
             {"watch", "kcat -b " + broker.address() + " -C -t " + cfg.topic}});
  auto signals = handled_signals();
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP)
    continue; // nothing to re-read
  log::info("Embedded Kafka broker stopped", {{"signal", strsignal(signal_number)}});
  return 0;
}

// The partitions after `broker`, or nothing (after saying why) when the arguments are wrong.
std::optional<int> broker_partitions(int argc, char** argv) {
  int partitions = 12;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg != "--partitions" || i + 1 == argc) {
      usage_error(arg);
      return std::nullopt;
    }
    std::string value = argv[++i];
    char* end = nullptr;
    long n = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n < 1 || n > 1000) {
      std::cerr << "user-activity-service: --partitions \"" << value
                << "\" is invalid: expected a number from 1 to 1000\n";
      return std::nullopt;
    }
    partitions = static_cast<int>(n);
  }
  return partitions;
}

} // namespace

int main(int argc, char** argv) {
  std::optional<int> broker_mode;
  if (argc > 1 && std::string_view{argv[1]} == "broker") {
    broker_mode = broker_partitions(argc, argv);
    if (!broker_mode)
      return 2;
  }
  for (int i = 1; i < argc && !broker_mode; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_help();
      return 0;
    }
    if (arg == "--version") {
      std::cout << "user-activity-service " << version << "\n";
      return 0;
    }
    if (arg == "hash-key" && argc == 2)
      return hash_key();
    return usage_error(arg);
  }
  config cfg;
  std::shared_ptr<const key_ring> keys;
  try {
    cfg = load_config(process_environment());
    if (cfg.tls())
      check_tls_files(cfg);
    keys = load_api_keys(cfg);
  } catch (const config_error& e) {
    std::cerr << "user-activity-service: configuration error: " << e.what() << "\n";
    return 2;
  }
  if (!cfg.memory_store()) {
    if (auto why = postgres::check_url(cfg.store_url); !why.empty()) {
      std::cerr << "user-activity-service: configuration error: STORE_URL=\"" << redact_url(cfg.store_url)
                << "\" is invalid: " << why << "\n";
      return 2;
    }
  }
  log::init(cfg.log_level, cfg.format);
  auto signals = handled_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return broker_mode ? run_broker(cfg, *broker_mode) : run(cfg, std::move(keys));
  } catch (const std::exception& e) {
    log::error("Start-up failed", {{"error", e.what()}});
    return 1;
  }
}
