// The store on a real PostgreSQL server the test starts itself: what a restart keeps, what a
// crash of the service or of the database loses (nothing) or doubles (nothing), how a shutdown
// ends a write the database holds up, and how the service starts when the database is not there.
#include <catch2/catch.hpp>

#include <sstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <csignal>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "postgres_server.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

const std::string id_prefix = "20000000";

std::string uuid(int n) {
  return numbered_uuid(id_prefix, n);
}

void produce(const std::string& broker, int first, int count) {
  REQUIRE(produce_events(broker, id_prefix, first, count));
}

// Waits until the table holds `count` events; the count it last saw.
long long wait_stored(const postgres_server& db, long long count,
                      std::chrono::milliseconds timeout = 60s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  long long seen = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = db.number("SELECT count(*) FROM events");
    if (seen >= count)
      break;
    std::this_thread::sleep_for(100ms);
  }
  return seen;
}

// The group's committed positions, per partition, as Kafka's own admin client reads them.
std::map<int, long long> committed_offsets(const std::string& broker) {
  auto r = run_command(
    "/usr/bin/python3 -c \"from kafka import KafkaAdminClient, TopicPartition\n"
    "a = KafkaAdminClient(bootstrap_servers='" + broker + "', api_version=(2, 5, 0))\n"
    "ps = [TopicPartition('" + external_broker::topic + "', p) for p in range(3)]\n"
    "for tp, o in a.list_consumer_group_offsets('user-activity-consumer-group', partitions=ps).items():\n"
    "    print(tp.partition, o.offset)\"");
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::map<int, long long> offsets;
  std::istringstream lines{r.output};
  int partition;
  long long offset;
  while (lines >> partition >> offset)
    offsets[partition] = offset;
  return offsets;
}

// A session of the test's own holding `LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE` until
// release(): every statement of the service's that touches the table waits for it.
class table_lock {
public:
  table_lock(const std::string& url, const std::string& table) : conn_{PQconnectdb(url.c_str())} {
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    auto sql = "BEGIN; LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE";
    PGresult* r = PQexec(conn_, sql.c_str());
    INFO(PQerrorMessage(conn_));
    REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
  }
  ~table_lock() { PQfinish(conn_); }
  void release() { PQclear(PQexec(conn_, "ROLLBACK")); }

private:
  PGconn* conn_;
};

bool no_line_holds(const service_process& service, const std::string& secret) {
  for (auto& line : service.lines())
    if (line.find(secret) != std::string::npos)
      return false;
  return true;
}

} // namespace

TEST_CASE("with PostgreSQL a restart keeps every event, and still knows their eventIds") {
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  postgres_server db;
  external_broker kafka;
  std::vector<std::string> ids;
  {
    auto service = kafka.start({{"STORE_URL", db.url()}});
    CHECK(service.count_lines("Database schema migrated: version=1") == 1);
    CHECK(service.count_lines("Database schema migrated: version=2") == 1);
    for (int i = 0; i < 100; ++i) {
      auto body = R"({"userId":"user-)" + std::to_string(i % 7)
                  + R"(","eventType":"LOGIN","payload":{"z":1,"a":"\u0000"}})";
      // The first continues a caller's trace; the others start their own.
      auto r = i == 0 ? service.client().Post("/events/generate", {{"traceparent", traceparent}},
                                              body, "application/json")
                      : service.post_event(body);
      REQUIRE(r);
      REQUIRE(r->status == 201);
      ids.push_back(json::parse(r->body)["eventId"]);
    }
    REQUIRE(service.wait_processed([](const json& all) { return all.size() == 100; }).size() == 100);
    CHECK(service.stop() == 0);
  }
  auto service = kafka.start({{"STORE_URL", db.url()}});
  // At once, before anything is consumed again: the events come from the database.
  auto events = service.processed();
  REQUIRE(events.size() == 100);
  std::set<std::string> stored;
  for (auto& e : events)
    stored.insert(e["eventId"].get<std::string>());
  CHECK(stored == std::set<std::string>(ids.begin(), ids.end()));
  // The payload reads back as the compact text it arrived as: key order and \u0000 kept.
  auto raw = service.client().Get("/events/processed");
  CHECK(raw->body.find(R"("payload":{"z":1,"a":"\u0000"}})") != std::string::npos);
  CHECK(service.count_lines("Database schema migrated") == 0);

  // A duplicate of a stored event, from another producer, after the restart: stored once.
  auto first = events[0];
  REQUIRE(run_command("echo '" + event_text(first["eventId"], "someone-else", "LOGOUT")
                      + "' | kcat -P -b " + kafka.broker.address() + " -t "
                      + external_broker::topic)
            .status == 0);
  CHECK(service.wait_for_line("Duplicate event ignored: eventId=" + first["eventId"].get<std::string>()));
  CHECK(db.number("SELECT count(*) FROM events") == 100);
  CHECK(service.processed()[0] == first);
  // Each row keeps the trace id its request travelled in.
  CHECK(db.query("SELECT trace_id FROM events WHERE event_id = '" + ids[0] + "'")
        == traceparent.substr(3, 32) + "\n");
  CHECK(db.number("SELECT count(DISTINCT trace_id) FROM events WHERE trace_id ~ '^[0-9a-f]{32}$'")
        == 100);
}

TEST_CASE("a database that cannot be reached at start is named, and the service exits 1 in time") {
  // A server that takes the connection and never says a word: libpq waits for its greeting.
  int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(silent, 16) == 0);
  getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
  auto host = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  for (auto url : {"postgresql://app:s3cret-pw@" + host + "/events",
                   "postgresql://app:s3cret-pw@127.0.0.1:" + std::to_string(free_port()) + "/events"}) {
    INFO(url);
    auto started = std::chrono::steady_clock::now();
    service_process service{{{"STORE_URL", url}, {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"}}, false};
    CHECK(service.wait_exit(15s) == 1);
    auto took = std::chrono::steady_clock::now() - started;
    CHECK(took < 4500ms);
    auto line = service.wait_for_line("Cannot reach the database", 5s);
    REQUIRE(line);
    CHECK(line->find("host=" + url.substr(url.find('@') + 1, url.rfind('/') - url.find('@') - 1))
          != std::string::npos);
    CHECK(no_line_holds(service, "s3cret-pw"));
  }
  close(silent);
}

TEST_CASE("a STORE_URL that does not parse stops the service with exit 2, its password unsaid") {
  for (std::string url : {"mysql://root:s3cret-pw@db/events", "postgresql://root:s3cret-pw@db:99999/events",
                          "postgresql://root:s3cret-pw@db/events?sslmode", "postgres://root:s3cret-pw@db/ev ents"}) {
    INFO(url);
    service_process service{{{"STORE_URL", url}}, false};
    CHECK(service.wait_exit(10s) == 2);
    CHECK(service.wait_for_line("STORE_URL", 5s));
    CHECK(no_line_holds(service, "s3cret-pw"));
  }
}

TEST_CASE("killed mid-drain of 20,000 events and started again, the service stores each exactly once") {
  postgres_server db;
  external_broker kafka;
  produce(kafka.broker.address(), 0, 20'000);
  long long at_kill = 0;
  {
    auto service = kafka.start({{"STORE_URL", db.url()}});
    REQUIRE(wait_stored(db, 2'000) >= 2'000);
    service.stop(SIGKILL);
    at_kill = db.number("SELECT count(*) FROM events");
  }
  INFO("stored when killed: " << at_kill);
  if (at_kill == 20'000)
    WARN("the drain finished before the kill; the restart has nothing left to store");
  auto service = kafka.start({{"STORE_URL", db.url()}});
  CHECK(wait_stored(db, 20'000) == 20'000);
  // The restarted service read again from the last committed positions: whatever the killed one
  // had stored but not committed comes again, as a duplicate; every other event is new to it.
  auto processed = [&] { return static_cast<long long>(service.count_lines("Processed event:")); };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (processed() < 20'000 - at_kill && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  std::this_thread::sleep_for(500ms);
  CHECK(processed() == 20'000 - at_kill);
  CHECK(db.number("SELECT count(*) FROM events") == 20'000);
  CHECK(db.number("SELECT count(DISTINCT kafka_partition::text || ':' || kafka_offset) FROM events") == 20'000);
  // The processing order holds every event once.
  CHECK(db.number("SELECT count(DISTINCT seq) FROM events") == 20'000);
}

TEST_CASE("the database crashing under load loses nothing, doubles nothing, commits nothing unstored") {
  postgres_server db;
  external_broker kafka;
  auto service = kafka.start({{"STORE_URL", db.url()}, {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"}});
  produce(kafka.broker.address(), 0, 5'000);
  REQUIRE(wait_stored(db, 300) >= 300);
  db.crash();
  // Kafka holds what comes in meanwhile: POST goes on.
  for (int i = 0; i < 20; ++i) {
    auto r = service.post_event(R"({"userId":"during-outage","eventType":"LOGIN"})");
    REQUIRE(r);
    CHECK(r->status == 201);
  }
  // The next write finds the database gone (the drain's, or the posted events' own).
  REQUIRE(service.wait_for_line("Store unavailable", 20s));
  auto ready = service.client().Get("/health/ready");
  REQUIRE(ready);
  CHECK(ready->status == 503);
  CHECK(ready->body.find("store cannot reach the database (127.0.0.1:" + std::to_string(db.port()))
        != std::string::npos);
  auto page = service.client().Get("/events/processed?limit=10");
  REQUIRE(page);
  CHECK(page->status == 503);

  // Whatever the group committed while the database was down was stored before it went: the
  // service is held still while the database comes back, so that nothing is stored in between.
  std::this_thread::sleep_for(500ms); // past the commit interval
  auto committed = committed_offsets(kafka.broker.address());
  long long committed_total = 0;
  for (auto [partition, offset] : committed)
    committed_total += std::max(0LL, offset);
  CHECK(committed_total >= 300); // something was committed before the crash, so there is something to check
  service.signal(SIGSTOP);
  db.start();
  for (auto [partition, offset] : committed) {
    if (offset < 0)
      continue; // nothing committed in this partition yet: nothing to hold the table to
    INFO("partition " << partition << " committed at " << offset);
    CHECK(db.number("SELECT count(*) FROM events WHERE kafka_partition = " + std::to_string(partition)
                    + " AND kafka_offset < " + std::to_string(offset))
          == offset);
  }
  service.signal(SIGCONT);

  CHECK(service.wait_for_line("Store available again", 20s));
  CHECK(wait_stored(db, 5'020) == 5'020);
  std::this_thread::sleep_for(500ms);
  CHECK(db.number("SELECT count(*) FROM events") == 5'020);
  CHECK(service.count_lines("Store unavailable") == 1);
  CHECK(service.count_lines("Store available again") == 1);
  // Each event is logged once: processed, or, when the crash took the answer to a write the
  // database had committed, a duplicate when the held write is sent again.
  CHECK(service.count_lines("Processed event:") + service.count_lines("Duplicate event ignored:")
        == 5'020);
  CHECK(service.client().Get("/health/ready")->status == 200);
}

TEST_CASE("an idle service's readiness follows its database: 503 while it is down, 200 once back") {
  postgres_server db;
  external_broker kafka;
  auto service = kafka.start({{"STORE_URL", db.url()}, {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"}});
  // Readiness as it settles within `timeout`: the first answer with `status`, if any.
  auto ready_becomes = [&](int status, std::chrono::seconds timeout) -> std::optional<std::string> {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = service.client().Get("/health/ready");
      if (r && r->status == status)
        return r->body;
      std::this_thread::sleep_for(200ms);
    }
    return std::nullopt;
  };
  REQUIRE(ready_becomes(200, 30s));
  // No event comes: only the store's own probe can notice.
  db.crash();
  auto down = ready_becomes(503, 20s);
  REQUIRE(down);
  CHECK(down->find("store cannot reach the database (127.0.0.1:" + std::to_string(db.port()))
        != std::string::npos);
  db.start();
  CHECK(ready_becomes(200, 20s));
  CHECK(service.count_lines("Store unavailable") == 0); // no write was held up
}

TEST_CASE("instances starting at once against a new database migrate it once, and both serve") {
  postgres_server db;
  external_broker kafka;
  // Started together, each on a thread of its own: both reach the migrations at the same
  // moment, give or take.
  std::map<std::string, std::string> env{{"STORE_URL", db.url()}, {"KAFKA_BROKERS", kafka.broker.address()}};
  std::optional<service_process> one, other;
  std::thread starting{[&] { one.emplace(env); }};
  other.emplace(env);
  starting.join();
  auto& first = *one;
  auto& second = *other;
  // One of them applied every version, once; the other found the schema up to date.
  auto applied = db.number("SELECT count(*) FROM schema_migrations");
  CHECK(applied >= 1);
  auto by_first = static_cast<long long>(first.count_lines("Database schema migrated"));
  auto by_second = static_cast<long long>(second.count_lines("Database schema migrated"));
  CHECK(((by_first == applied && by_second == 0) || (by_first == 0 && by_second == applied)));
  // One table for both: what one stores, the other serves.
  auto r = first.post_event(R"({"userId":"shared","eventType":"LOGIN"})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto id = json::parse(r->body)["eventId"].get<std::string>();
  CHECK(second.wait_processed([&](const json& all) { return all.size() == 1 && all[0]["eventId"] == id; }, 30s)
          .size() == 1);
}

TEST_CASE("with PostgreSQL, events stored longer ago than STORE_RETENTION_DAYS are deleted, the rest kept") {
  postgres_server db;
  external_broker kafka;
  produce(kafka.broker.address(), 0, 300);
  {
    auto service = kafka.start({{"STORE_URL", db.url()}});
    REQUIRE(wait_stored(db, 300) == 300);
    CHECK(service.stop() == 0);
  }
  // Two users' events (12 of them) as if stored three days ago.
  db.query("UPDATE events SET stored_at = now() - interval '3 days' WHERE user_id IN ('user-1', 'user-2')");
  auto service = kafka.start({{"STORE_URL", db.url()}, {"STORE_RETENTION_DAYS", "2"}});
  CHECK(service.wait_for_line("Expired stored events: count=12, retentionDays=2"));
  CHECK(db.number("SELECT count(*) FROM events") == 288);
  auto events = service.processed();
  CHECK(events.size() == 288);
  for (auto& e : events)
    CHECK((e["userId"] != "user-1" && e["userId"] != "user-2"));
}

TEST_CASE("a topic made again, its offsets from 0 and the group without commits, skips nothing: the read positions stored for the old topic are forgotten") {
  postgres_server db;
  std::map<std::string, std::string> env{{"STORE_URL", db.url()}};
  {
    // The events of a first topic, stored with their partitions' read positions (near 100
    // each); then the broker goes, and everything it held with it.
    external_broker old_topic;
    auto service = old_topic.start(env);
    produce(old_topic.broker.address(), 0, 300);
    REQUIRE(wait_stored(db, 300) == 300);
    CHECK(service.stop() == 0);
  }
  // The topic made again, as a restarted embedded broker makes it: half as many events, so each
  // partition's old position lies past everything it now holds.
  external_broker kafka;
  {
    auto service = kafka.start(env);
    produce(kafka.broker.address(), 300, 150);
    CHECK(wait_stored(db, 450) == 450);
    CHECK(service.count_lines("storedUpTo=") == 0); // no commit yet: read from the beginning
    CHECK(service.stop() == 0);
  }
  // Started again on the new topic, each partition resumes at its commit: had the old positions
  // lived on past it, it would resume there instead and skip the new events before them.
  auto service = kafka.start(env);
  produce(kafka.broker.address(), 450, 150);
  CHECK(wait_stored(db, 600, 30s) == 600);
  std::set<std::string> missing;
  for (int i = 0; i < 600; ++i)
    missing.insert(uuid(i));
  for (auto& e : service.processed())
    missing.erase(e["eventId"].get<std::string>());
  CHECK(missing.empty());
  CHECK(service.count_lines("Duplicate event ignored") == 0);
  // The positions are the new topic's: each partition's is past the last event read from it.
  CHECK(db.number("SELECT count(*) FROM read_positions") == 3);
  CHECK(db.number("SELECT count(*) FROM read_positions r WHERE next_offset <> (SELECT "
                  "max(kafka_offset) + 1 FROM events e WHERE e.kafka_partition = r.kafka_partition"
                  " AND e.event_id >= '" + uuid(300) + "')") == 0);
}

TEST_CASE("a stopping service whose last write the database holds up cancels it at the deadline, exits 0, and its events are stored once by the next start") {
  postgres_server db;
  external_broker kafka;
  std::map<std::string, std::string> env{{"STORE_URL", db.url()}};
  auto service = kafka.start(env);
  std::set<std::string> answered;
  auto post = [&](int count) {
    for (int i = 0; i < count; ++i) {
      auto r = service.post_event(R"({"userId":"user-)" + std::to_string(i % 9)
                                  + R"(","eventType":"LOGIN"})");
      REQUIRE(r);
      REQUIRE(r->status == 201);
      answered.insert(json::parse(r->body)["eventId"].get<std::string>());
    }
  };
  post(10);
  REQUIRE(wait_stored(db, 10) == 10);
  table_lock lock{db.url(), "events"};
  post(40);
  // The consumer's one write waits for the lock; the rest gathers behind it.
  REQUIRE(eventually([&] {
    return db.number("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                     "'user-activity-service' AND wait_event_type = 'Lock'") == 1;
  }));
  auto signalled = std::chrono::steady_clock::now();
  int status = service.stop(SIGTERM, 15s);
  auto took = std::chrono::steady_clock::now() - signalled;
  INFO("exit " << status << " after "
               << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(status == 0);
  CHECK(took < 10s);
  CHECK(service.count_lines("Shutdown took longer") == 0);
  auto cancelled = service.wait_for_line("Database write cancelled at the shutdown deadline", 2s);
  REQUIRE(cancelled);
  auto events = std::stoi(cancelled->substr(cancelled->find("events=") + 7));
  CHECK(events >= 1);
  CHECK(events <= 40);
  CHECK(service.count_lines("Store unavailable") == 0); // the consumer ended before the cancel
  // Cancelled, the write stored nothing, and its read positions stayed where they were.
  lock.release();
  CHECK(db.number("SELECT count(*) FROM events") == 10);
  CHECK(db.number("SELECT sum(next_offset) FROM read_positions") == 10);
  // The next start reads the 40 again and stores each once.
  auto again = kafka.start(env);
  CHECK(wait_stored(db, 50) == 50);
  std::this_thread::sleep_for(500ms);
  std::set<std::string> stored;
  for (auto& e : again.processed())
    stored.insert(e["eventId"].get<std::string>());
  CHECK(db.number("SELECT count(*) FROM events") == 50);
  CHECK(stored == answered);
  CHECK(again.count_lines("Duplicate event ignored") == 0);
}
