// Several instances in one consumer group: the broker in a process of its own, partition
// ownership in the log and in /metrics, and work handed over across a rebalance.
#include <catch2/catch.hpp>

#include <csignal>
#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>
#include <set>
#include <optional>

#include "postgres_server.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// kcat's metadata listing: the number of partitions it reports for `topic`, or -1.
int partitions_seen(const std::string& broker, const std::string& topic) {
  auto listing = run_command("kcat -b " + broker + " -L -t " + topic + " -m 10").output;
  std::smatch m;
  if (std::regex_search(listing, m, std::regex{"topic \"" + topic + "\" with (\\d+) partitions"}))
    return std::stoi(m[1]);
  return -1;
}

// The samples of /metrics whose series starts with `prefix`, by full series name.
std::map<std::string, double> scrape(const service_process& s, const std::string& prefix) {
  std::map<std::string, double> samples;
  auto r = s.client().Get("/metrics");
  if (!r || r->status != 200)
    return samples;
  std::stringstream lines{r->body};
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(prefix, 0) == 0 && line.find(' ') != std::string::npos)
      samples[line.substr(0, line.rfind(' '))] = std::stod(line.substr(line.rfind(' ') + 1));
  return samples;
}

double assigned(const service_process& s) {
  return scrape(s, "consumer_assigned_partitions")["consumer_assigned_partitions"];
}

// The value of `name=` in a text log line, up to the next ", ".
std::string field_of(const std::string& line, const std::string& name) {
  auto at = line.find(name + "=");
  if (at == std::string::npos)
    return {};
  at += name.size() + 1;
  return line.substr(at, line.find(", ", at) - at);
}

// The partitions a service owns now, by its log: each `Partitions assigned` line adds what it
// names, each `Partitions revoked` (or lost) line takes it away (rebalances are incremental).
std::set<int> owned_partitions(const service_process& s) {
  std::set<int> owned;
  for (auto& line : s.lines()) {
    bool assigned = line.find("Partitions assigned: ") != std::string::npos;
    if (!assigned && line.find("Partitions revoked: ") == std::string::npos
        && line.find("Partitions lost: ") == std::string::npos)
      continue;
    std::stringstream numbers{field_of(line, "partitions")};
    std::string n;
    while (std::getline(numbers, n, ','))
      if (assigned)
        owned.insert(std::stoi(n));
      else
        owned.erase(std::stoi(n));
  }
  return owned;
}

// Where each event a service stored was read: eventId -> (partition, offset).
std::map<std::string, std::pair<int, long>> read_positions(const service_process& s) {
  std::map<std::string, std::pair<int, long>> where;
  for (auto& line : s.lines())
    if (line.find("Processed event: ") != std::string::npos)
      where[field_of(line, "eventId")] = {std::stoi(field_of(line, "partition")),
                                          std::stol(field_of(line, "offset"))};
  return where;
}

// What a service said its partitions' next owner reads again, from its `Offset commit on
// revocation failed` and `Partitions lost` lines: partition -> first offset read again; and
// from its lines on revocations that outlasted their wait for the store (a starved machine),
// which name partitions only: from their last commit, wherever that was.
std::map<int, long> handed_on_uncommitted(const std::vector<std::string>& lines) {
  std::map<int, long> from;
  for (auto& line : lines) {
    if (line.find("Partitions revoked before the store answered") != std::string::npos) {
      std::stringstream partitions{field_of(line, "partitions")};
      std::string partition;
      while (std::getline(partitions, partition, ','))
        from[std::stoi(partition)] = 0;
      continue;
    }
    if (line.find("Offset commit on revocation failed: ") == std::string::npos
        && line.find("Partitions lost: ") == std::string::npos)
      continue;
    std::stringstream positions{field_of(line, "readAgainFrom")};
    std::string position;
    while (std::getline(positions, position, ',')) {
      auto colon = position.find(':');
      auto offset = position.substr(colon + 1);
      // No commit yet: the next owner starts where the group began, the topic's first offset.
      from[std::stoi(position.substr(0, colon))] = offset == "none" ? 0 : std::stol(offset);
    }
  }
  return from;
}

// The lines that tell how partitions moved, for a failure's report.
std::string ownership_log(const std::vector<const service_process*>& services) {
  std::string text;
  for (size_t i = 0; i < services.size(); ++i) {
    text += "--- instance " + std::to_string(i + 1) + "\n";
    for (auto& line : services[i]->lines())
      if (line.find("Partitions ") != std::string::npos || line.find("commit") != std::string::npos
          || line.find(" warn ") != std::string::npos || line.find(" error ") != std::string::npos)
        text += line + "\n";
  }
  return text;
}

std::set<std::string> ids_of(const json& events) {
  std::set<std::string> ids;
  for (auto& e : events)
    ids.insert(e["eventId"].get<std::string>());
  return ids;
}

} // namespace

TEST_CASE("the broker subcommand prints its address first and serves the topic to kcat") {
  broker_process broker{5};
  CHECK(partitions_seen(broker.address(), "user-activity-events") == 5);
  CHECK(partitions_seen(broker.address(), "user-activity-events.dlq") == 5);
  auto started = broker.process().wait_for_line("Embedded Kafka broker started");
  REQUIRE(started);
  CHECK_THAT(*started, Catch::Contains("kcat -b " + broker.address() + " -C -t user-activity-events"));
  CHECK(broker.process().stop(SIGTERM, 5s) == 0);
}

TEST_CASE("the broker subcommand has 12 partitions unless told, and refuses a bad count") {
  broker_process broker;
  CHECK(partitions_seen(broker.address(), "user-activity-events") == 12);
  CHECK(broker.process().stop(SIGINT, 5s) == 0);
  for (auto bad : {"0", "twelve", "12x", "-3"}) {
    auto r = run_command(std::string{UAS_BINARY} + " broker --partitions " + bad);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("--partitions"));
  }
  CHECK(run_command(std::string{UAS_BINARY} + " broker --partitions").status == 2);
  CHECK(run_command(std::string{UAS_BINARY} + " broker --frobnicate").status == 2);
}

TEST_CASE("a service runs against the broker process, where kcat sees its events") {
  broker_process broker{4};
  auto service = broker.start();
  auto r = service->post_event(R"({"userId":"alice","eventType":"LOGIN"})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto id = json::parse(r->body)["eventId"].get<std::string>();
  auto events = service->wait_processed([](const json& all) { return all.size() == 1; });
  REQUIRE(events.size() == 1);
  CHECK(events[0]["eventId"] == id);
  auto topic = run_command("kcat -b " + broker.address()
                           + " -C -t user-activity-events -o beginning -e -q -f '%k %s\\n'");
  CHECK_THAT(topic.output, Catch::Contains("alice {") && Catch::Contains(id));
}

TEST_CASE("two instances share one broker's partitions, and each event is stored by exactly one") {
  broker_process broker{6};
  // librdkafka's mock broker waits a session timeout less a second for members to rejoin at
  // every step of a rebalance: a short session keeps the test short.
  std::map<std::string, std::string> group{{"KAFKA_CONSUMER_GROUP", "scale-group"},
                                           {"KAFKA_SESSION_TIMEOUT_MS", "3000"}};
  auto first = broker.start(group);
  if (!first->wait_for_line(
        "Partitions assigned: topic=user-activity-events, count=6, partitions=0,1,2,3,4,5", 30s))
    FAIL("the first instance was not given every partition\n" << ownership_log({first.get()}));
  CHECK(eventually([&] { return assigned(*first) == 6; }, 5s));

  // POSTs go on, one after another, while a second member joins: partitions move with records
  // in flight.
  std::mutex mutex;
  std::set<std::string> posted;
  std::atomic<bool> loading{true};
  std::atomic<int> failures{0};
  std::thread load{[&] {
    for (int i = 0; loading; ++i) {
      auto r = first->post_event(R"({"userId":"user-)" + std::to_string(i % 50)
                                 + R"(","eventType":"LOGIN"})");
      if (!r || r->status != 201) {
        ++failures;
        continue;
      }
      std::lock_guard<std::mutex> guard{mutex};
      posted.insert(json::parse(r->body)["eventId"].get<std::string>());
    }
  }};
  auto posted_count = [&] {
    std::lock_guard<std::mutex> guard{mutex};
    return posted.size();
  };
  CHECK(eventually([&] { return posted_count() >= 100; }, 20s));
  auto second = broker.start(group);
  // The group converges: every partition owned by one of the two, each owning some. On a starved
  // machine a session may expire on the way, and the first's partitions are lost, not revoked.
  bool converged = eventually([&] { return assigned(*first) + assigned(*second) == 6
                                           && assigned(*first) > 0 && assigned(*second) > 0; }, 40s);
  auto until = posted_count() + 100;
  bool loaded = eventually([&] { return posted_count() >= until; }, 20s);
  loading = false;
  load.join();
  INFO(ownership_log({first.get(), second.get()}));
  REQUIRE(converged);
  CHECK(loaded);
  CHECK(failures == 0);
  CHECK(first->count_lines("Partitions revoked: ") + first->count_lines("Partitions lost: ") > 0);
  CHECK(second->count_lines("Partitions assigned: ") > 0);

  auto a = owned_partitions(*first), b = owned_partitions(*second);
  std::set<int> both = a;
  both.insert(b.begin(), b.end());
  CHECK(both == std::set<int>{0, 1, 2, 3, 4, 5});
  CHECK(a.size() + b.size() == 6);
  // Each store holds only its own partitions' events, and says so.
  CHECK(second->wait_for_line("Other members share the consumer group", 1s));

  // Every event acknowledged is stored, and by one instance only: what the first had done when
  // its partitions moved was committed, so the second did not read it again.
  auto union_of = [&] {
    auto ids = ids_of(first->processed());
    for (auto& id : ids_of(second->processed()))
      ids.insert(id);
    return ids;
  };
  CHECK(eventually([&] { return union_of() == posted; }, 30s));
  auto in_first = ids_of(first->processed()), in_second = ids_of(second->processed());
  std::vector<std::string> in_both;
  std::set_intersection(in_first.begin(), in_first.end(), in_second.begin(), in_second.end(),
                        std::back_inserter(in_both));
  // Unless the first said otherwise: a commit refused while the group rebalances (librdkafka's
  // mock broker refuses every commit while a member joins, and a member late to sync rejoins at
  // once) or partitions lost with a session. Then the second reads again exactly what the first
  // did after the last commit it reported, and no more (at least once).
  auto read_again_from = handed_on_uncommitted(first->lines());
  auto where_first_read = read_positions(*first);
  INFO(in_both.size() << " of " << posted.size() << " events stored by both instances");
  if (read_again_from.empty())
    CHECK(in_both.empty());
  for (auto& id : in_both) {
    auto [partition, offset] = where_first_read[id];
    INFO("event " << id << " at partition " << partition << ", offset " << offset);
    REQUIRE(read_again_from.count(partition));
    CHECK(offset >= read_again_from[partition]);
  }
  // The first may read a record of a partition it kept a second time: librdkafka 2.0.2 can
  // fetch again from an earlier position when a cooperative rebalance resumes partitions that
  // were never paused (confluentinc/librdkafka#4637, mended in later releases). The store takes
  // such a record once. Anything else read twice (a record of a partition handed on, or an event
  // produced twice) is a duplicate of ours.
  for (auto& line : first->lines()) {
    if (line.find("Duplicate event ignored: ") == std::string::npos)
      continue;
    INFO(line);
    std::pair<int, long> again{std::stoi(field_of(line, "partition")),
                               std::stol(field_of(line, "offset"))};
    CHECK(again == where_first_read[field_of(line, "eventId")]);
    CHECK(a.count(again.first) == 1);
  }
  CHECK(second->count_lines("Duplicate event ignored") == 0);

  // Once all is stored and committed, the lag on every partition each instance owns is 0.
  auto caught_up = [&](const service_process& s, size_t owned) {
    auto lag = scrape(s, "consumer_lag{");
    if (lag.size() != owned)
      return false;
    for (auto& [series, value] : lag)
      if (value != 0)
        return false;
    return true;
  };
  CHECK(eventually([&] { return caught_up(*first, a.size()) && caught_up(*second, b.size()); },
                   15s));
}

namespace {

// GET /events/processed page by page, following each page's Link rel="next": every eventId.
std::optional<std::vector<std::string>> all_pages(const service_process& s) {
  std::vector<std::string> ids;
  std::string target = "/events/processed?limit=1000";
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = s.client().Get(target.c_str());
    if (!r || r->status != 200)
      return std::nullopt;
    for (auto& e : json::parse(r->body))
      ids.push_back(e["eventId"].get<std::string>());
    std::smatch m;
    auto link = r->get_header_value("Link");
    if (!std::regex_match(link, m, std::regex{R"(<([^>]+)>; rel="next")"}))
      return ids;
    target = m[1].str();
  }
  return std::nullopt;
}

// A service's log lines from the `from`th on.
std::vector<std::string> lines_since(const service_process& s, size_t from) {
  auto all = s.lines();
  return {all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())), all.end()};
}

size_t count_since(const service_process& s, size_t from, const std::string& text) {
  size_t n = 0;
  for (auto& line : lines_since(s, from))
    n += line.find(text) != std::string::npos;
  return n;
}

// Users' traffic as the issue describes it: three clients, one per instance, each POSTing one
// event at a time every 5 ms for its own third of 1,000 userIds. One user's events are sent by
// one client, each after the one before was acknowledged, so the topic holds them in that order.
// (Two clients sending for one user could have both POSTs in flight at once on a starved
// machine, and then neither order is the user's.)
class steady_load {
public:
  static constexpr int users = 1000;

  explicit steady_load(const std::vector<int>& ports) {
    for (int port : ports)
      clients_.push_back(std::make_shared<httplib::Client>("127.0.0.1", port));
    for (size_t i = 0; i < clients_.size(); ++i)
      threads_.emplace_back([this, i] { post(i); });
  }
  ~steady_load() { stop(); }

  // From now on client `i` POSTs to the instance on `port` (a load balancer routing around an
  // instance that went away, then to its replacement). Its POST in flight goes on where it was.
  void route(size_t i, int port) {
    std::lock_guard<std::mutex> guard{mutex_};
    clients_[i] = std::make_shared<httplib::Client>("127.0.0.1", port);
  }

  void stop() {
    loading_ = false;
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  std::vector<std::string> acknowledged() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return acknowledged_;
  }
  // Each user's acknowledged eventIds, in the order they were acknowledged.
  std::map<std::string, std::vector<std::string>> by_user() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return by_user_;
  }
  int attempts() const { return attempts_; }

private:
  void post(size_t i) {
    auto next = std::chrono::steady_clock::now();
    int stride = static_cast<int>(clients_.size());
    int own_users = (users - static_cast<int>(i) + stride - 1) / stride; // i, i + stride, ...
    for (int n = 0; loading_; ++n) {
      next += 5ms;
      auto user = "user-" + std::to_string(static_cast<int>(i) + stride * (n % own_users));
      std::shared_ptr<httplib::Client> client;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        client = clients_[i];
      }
      ++attempts_;
      auto r = client->Post("/events/generate",
                            R"({"userId":")" + user + R"(","eventType":"PRODUCT_VIEW"})",
                            "application/json");
      if (r && r->status == 201) {
        auto id = json::parse(r->body)["eventId"].get<std::string>();
        std::lock_guard<std::mutex> guard{mutex_};
        acknowledged_.push_back(id);
        by_user_[user].push_back(id);
      }
      std::this_thread::sleep_until(next);
    }
  }

  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<httplib::Client>> clients_;
  std::vector<std::string> acknowledged_;
  std::map<std::string, std::vector<std::string>> by_user_;
  std::atomic<bool> loading_{true};
  std::atomic<int> attempts_{0};
  std::vector<std::thread> threads_;
};

// One broker (12 partitions), one PostgreSQL and three instances in one consumer group: what
// both fail-over runs share, one after the other.
class scale_out {
public:
  scale_out() {
    // PostgreSQL takes seconds to initialize: the broker starts meanwhile.
    auto database = std::async(std::launch::async, [] { return std::make_unique<postgres_server>(); });
    broker_ = std::make_unique<broker_process>(12);
    db_ = database.get();
    env_ = {{"KAFKA_CONSUMER_GROUP", "fail-over"},
            // librdkafka's mock broker waits a session timeout less a second for members to
            // rejoin at every step of a rebalance: a short session keeps the runs short.
            {"KAFKA_SESSION_TIMEOUT_MS", "3000"},
            {"STORE_URL", db_->url()}};
    std::vector<std::future<std::unique_ptr<service_process>>> starting;
    for (int i = 0; i < 3; ++i)
      starting.push_back(std::async(std::launch::async, [this] { return start(); }));
    for (auto& s : starting)
      services.push_back(s.get());
    if (!eventually([&] { return converged(); }, 40s))
      FAIL("the group did not share the partitions\n" << report());
  }

  std::unique_ptr<service_process> start() const { return broker_->start(env_); }
  const postgres_server& db() const { return *db_; }

  // Every partition owned by one of the instances running, each owning some.
  bool converged() const {
    double total = 0;
    for (auto& s : services) {
      auto n = assigned(*s);
      if (n <= 0)
        return false;
      total += n;
    }
    return total == 12;
  }

  // Every partition's lag, as the instances running report it, is 0.
  bool caught_up() const {
    size_t partitions = 0;
    for (auto& s : services) {
      auto lag = scrape(*s, "consumer_lag{");
      for (auto& [series, value] : lag)
        if (value != 0)
          return false;
      partitions += lag.size();
    }
    return partitions == 12;
  }

  std::vector<const service_process*> everyone() const {
    std::vector<const service_process*> all;
    for (auto& s : ended)
      all.push_back(s.get());
    for (auto& s : services)
      all.push_back(s.get());
    return all;
  }
  std::string report() const { return ownership_log(everyone()); }

  std::vector<std::unique_ptr<service_process>> services; // running
  std::vector<std::unique_ptr<service_process>> ended;
  // Every user's acknowledged eventIds over both runs, in the order they were acknowledged.
  std::map<std::string, std::vector<std::string>> by_user;

private:
  std::unique_ptr<broker_process> broker_;
  std::unique_ptr<postgres_server> db_;
  std::map<std::string, std::string> env_;
};

// 20 s of steady POSTs over the three instances; at 10 s, `services[victim]` ends by `signal`
// and a replacement starts. Then: every event acknowledged is in the table once, every instance
// pages through the same events, each user's are in order, the partitions moved and the lag is
// back to 0 within 10 s of the load's end.
void fail_over(scale_out& group, int signal, size_t victim) {
  auto& services = group.services;
  std::vector<size_t> marks; // where each instance's log was when the run began
  for (auto& s : services)
    marks.push_back(s->lines().size());
  std::vector<int> ports;
  for (auto& s : services)
    ports.push_back(s->port());
  auto began = std::chrono::steady_clock::now();
  steady_load load{ports};

  std::this_thread::sleep_until(began + 10s);
  load.route(victim, services[(victim + 1) % services.size()]->port());
  auto victim_owned = owned_partitions(*services[victim]);
  CHECK(services[victim]->stop(signal, 15s) == (signal == SIGKILL ? 128 + SIGKILL : 0));
  group.ended.push_back(std::move(services[victim]));
  auto& ended = *group.ended.back();
  auto ended_mark = marks[victim];
  services[victim] = group.start();
  marks[victim] = 0;
  load.route(victim, services[victim]->port());

  std::this_thread::sleep_until(began + 20s);
  load.stop();
  auto load_ended = std::chrono::steady_clock::now();
  auto acknowledged_in_order = load.acknowledged();
  for (auto& [user, ids] : load.by_user()) {
    auto& all = group.by_user[user];
    all.insert(all.end(), ids.begin(), ids.end());
  }

  INFO(group.report());
  INFO(acknowledged_in_order.size() << " events acknowledged of " << load.attempts() << " POSTs");
  // 600 POSTs a second were asked for; a starved machine answers fewer, but thousands.
  CHECK(acknowledged_in_order.size() > 2000);

  // The lag returns to 0 on every partition, the group converged with the replacement in it.
  bool caught_up = eventually([&] { return group.converged() && group.caught_up(); }, 10s);
  INFO("lag 0 " << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - load_ended).count() << " ms after the load");
  CHECK(caught_up);

  // The partitions moved, as the logs show: the replacement got some, and the one that ended
  // saw its own go; every partition it owned is owned by a running instance now.
  CHECK(count_since(*services[victim], 0, "Partitions assigned: ") >= 1);
  if (signal == SIGTERM)
    CHECK(ended.count_lines("Partitions revoked: ") >= 1);
  std::set<int> owned_now;
  for (auto& s : services) {
    auto mine = owned_partitions(*s);
    owned_now.insert(mine.begin(), mine.end());
  }
  for (int p : victim_owned)
    CHECK(owned_now.count(p));

  // Every event answered 201 is in the table, once (the eventId is its primary key).
  std::set<std::string> acknowledged(acknowledged_in_order.begin(), acknowledged_in_order.end());
  CHECK(acknowledged.size() == acknowledged_in_order.size());
  auto in_table = [&] {
    std::set<std::string> ids;
    std::stringstream rows{group.db().query("SELECT event_id FROM events")};
    std::string id;
    while (std::getline(rows, id))
      ids.insert(id);
    return ids;
  };
  std::set<std::string> table;
  CHECK(eventually([&] {
    table = in_table();
    return std::includes(table.begin(), table.end(), acknowledged.begin(), acknowledged.end());
  }, 10s));
  std::vector<std::string> missing;
  std::set_difference(acknowledged.begin(), acknowledged.end(), table.begin(), table.end(),
                      std::back_inserter(missing));
  CHECK(missing.empty());
  CHECK(group.db().number("SELECT count(*) FROM events") == static_cast<long long>(table.size()));

  // Every instance pages through the same events.
  auto pages = all_pages(*services[0]);
  REQUIRE(pages);
  CHECK(std::set<std::string>(pages->begin(), pages->end()) == table);
  CHECK(pages->size() == table.size());
  for (size_t i = 1; i < services.size(); ++i)
    CHECK(all_pages(*services[i]) == pages);

  // Each user's events are in the table in the order they were acknowledged.
  std::set<std::string> ever_acknowledged;
  for (auto& [user, ids] : group.by_user)
    ever_acknowledged.insert(ids.begin(), ids.end());
  std::map<std::string, std::vector<std::string>> stored_by_user;
  std::stringstream rows{group.db().query("SELECT user_id || ' ' || event_id FROM events ORDER BY seq")};
  std::string row;
  while (std::getline(rows, row)) {
    auto user = row.substr(0, row.find(' '));
    auto id = row.substr(row.find(' ') + 1);
    if (ever_acknowledged.count(id))
      stored_by_user[user].push_back(id);
  }
  int out_of_order = 0;
  for (auto& [user, ids] : group.by_user)
    out_of_order += stored_by_user[user] != ids;
  CHECK(out_of_order == 0);
  CHECK(group.by_user.size() == steady_load::users);

  // With the store shared, no instance warns of a partial view.
  for (auto* s : group.everyone())
    CHECK(s->count_lines("Other members share the consumer group") == 0);

  // Each partition's read position, stored with its events, is past every event stored from it.
  CHECK(group.db().number("SELECT count(*) FROM read_positions") == 12);
  CHECK(group.db().number("SELECT count(*) FROM events e JOIN read_positions r USING (kafka_partition)"
                          " WHERE e.kafka_offset >= r.next_offset") == 0);

  // An event processed twice is a duplicate the database refused. A partition's next owner
  // starts from the read position stored with its events, so none is processed twice: not after
  // a SIGTERM, nor after the rebalances around it, whether or not the broker took the commits.
  // Only two things may read again from before that position: a killed instance (its move found
  // no commit of the group yet, or it died mid-write), and a rebalance's revocation that outlasted
  // its wait for the store (a store stalled for seconds), which the instance warns of, naming the
  // partitions. A stopping instance waits for its store until its shutdown's deadline: its
  // partitions go with everything it read stored, even on a starved machine.
  if (signal == SIGTERM)
    CHECK(count_since(ended, ended_mark, "Partitions revoked before the store answered") == 0);
  std::vector<std::pair<const service_process*, size_t>> this_run{{&ended, ended_mark}};
  for (size_t i = 0; i < services.size(); ++i)
    this_run.push_back({services[i].get(), marks[i]});
  auto read_again = signal == SIGKILL ? victim_owned : std::set<int>{};
  size_t slow_revocations = 0;
  for (auto& [s, from] : this_run)
    for (auto& line : lines_since(*s, from))
      if (line.find("Partitions revoked before the store answered") != std::string::npos) {
        ++slow_revocations;
        std::stringstream partitions{field_of(line, "partitions")};
        for (std::string p; std::getline(partitions, p, ',');)
          read_again.insert(std::stoi(p));
      }
  size_t duplicates = 0;
  for (auto& [s, from] : this_run)
    for (auto& line : lines_since(*s, from)) {
      if (line.find("Duplicate event ignored: ") == std::string::npos)
        continue;
      ++duplicates;
      INFO(line);
      CHECK(read_again.count(std::stoi(field_of(line, "partition"))));
    }
  size_t refused = 0, resumed = 0;
  for (auto& [s, from] : this_run) {
    refused += count_since(*s, from, "Offset commit on revocation refused");
    resumed += count_since(*s, from, "storedUpTo=");
  }
  WARN((signal == SIGKILL ? "SIGKILL" : "SIGTERM")
       << " run: " << acknowledged.size() << " events acknowledged, " << duplicates
       << " processed twice; " << refused << " commits on revocation refused, " << resumed
       << " assignments started from stored read positions, " << slow_revocations
       << " revocations that outlasted their wait for the store");
}

} // namespace

TEST_CASE("three instances on one database under load: one SIGKILLed, then one stopped with SIGTERM, each replaced: every acknowledged event is stored once, in each user's order") {
  scale_out group;
  fail_over(group, SIGKILL, 0);
  fail_over(group, SIGTERM, 1);
}
