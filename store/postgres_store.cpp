#include "store/postgres_store.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <unordered_set>

#include <libpq-fe.h>

#include "core/config.hpp"
#include "core/log.hpp"
#include "core/trace_context.hpp"
#include "store/migrations.hpp"

namespace uas::postgres {

namespace {

// The columns a read selects, in the order json_array reads them.
constexpr const char* event_columns = R"(event_id, user_id, event_type, "timestamp", payload, seq)";

// One statement for a whole batch: the arrays are the batch's columns, unnested in order so
// that processing order follows the batch's; a stored eventId is skipped, and those stored now
// are returned, which tells the new from the duplicates.
// The events, and the read positions their partitions resume from: one statement, so one
// transaction. A position never moves back (a batch read again after a seek).
constexpr const char* insert_sql = R"(
  WITH stored AS (
    INSERT INTO events (event_id, user_id, event_type, "timestamp", payload, kafka_partition,
                        kafka_offset, trace_id)
    SELECT e.event_id, e.user_id, e.event_type, e.ts, e.payload, e.kafka_partition, e.kafka_offset,
           NULLIF(e.trace_id, '')
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
                $7::bigint[], $8::text[])
      WITH ORDINALITY AS e(event_id, user_id, event_type, ts, payload, kafka_partition,
                           kafka_offset, trace_id, n)
    ORDER BY e.n
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id),
  moved AS (
    INSERT INTO read_positions (consumer_group, topic, kafka_partition, next_offset)
    SELECT $12::text, * FROM unnest($9::text[], $10::integer[], $11::bigint[])
    ON CONFLICT (consumer_group, topic, kafka_partition)
      DO UPDATE SET next_offset = GREATEST(read_positions.next_offset, EXCLUDED.next_offset))
  SELECT event_id FROM stored)";

constexpr const char* positions_sql = R"(
  SELECT kafka_partition, next_offset FROM read_positions
  WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::integer[]))";

constexpr const char* forget_positions_sql = R"(
  DELETE FROM read_positions
  WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::integer[]))";

// How many rows one query of a read that wants every event takes at a time.
constexpr int read_chunk = 10'000;

// Adds `value` to an array literal's elements, quoted so that any character but NUL stays as it is.
void add_element(std::string& array, std::string_view value) {
  array += array.size() > 1 ? ",\"" : "\"";
  for (char c : value) {
    if (c == '"' || c == '\\')
      array += '\\';
    array += c;
  }
  array += '"';
}

// Errors worth retrying: the connection or the server's state, not the request.
bool transient(PGconn* conn, const PGresult* r) {
  if (PQstatus(conn) != CONNECTION_OK)
    return true;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (!state)
    return true; // libpq's own failure: the connection
  std::string_view code{state};
  auto family = code.substr(0, 2);
  // connection exception, insufficient resources, operator intervention, system error,
  // transaction rollback (serialization, deadlock), lock not available
  return family == "08" || family == "53" || family == "57" || family == "58" || family == "40"
         || code == "55P03";
}

std::string first_line(const char* message) {
  std::string text = message ? message : "";
  text = text.substr(0, text.find('\n'));
  return text.empty() ? "unknown error" : text;
}

bool holds_nul(const event& e) {
  for (auto* field : {&e.event_id, &e.user_id, &e.event_type, &e.timestamp, &e.payload})
    if (field->find('\0') != std::string::npos)
      return true;
  return false;
}

} // namespace

std::string check_url(const std::string& url) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
  if (options) {
    PQconninfoFree(options);
    return {};
  }
  std::string why = error ? first_line(error) : "cannot be read as connection settings";
  PQfreemem(error);
  return why;
}

void store::result_deleter::operator()(pg_result* r) const {
  PQclear(r);
}

store::store(std::string url, std::chrono::milliseconds timeout, std::string consumer_group)
  : url_{std::move(url)}, timeout_{timeout}, group_{std::move(consumer_group)} {
  std::string why;
  if (!connected(why))
    throw std::runtime_error{why};
}

store::~store() {
  disconnect();
}

void store::disconnect() {
  {
    std::lock_guard<std::mutex> lock{cancel_mutex_};
    PQfreeCancel(canceller_); // libpq takes null
    canceller_ = nullptr;
  }
  if (conn_)
    PQfinish(conn_);
  conn_ = nullptr;
}

bool store::connected(std::string& why) {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK)
    return true;
  disconnect();
  // libpq counts whole seconds, and takes 1 as 2.
  auto seconds = std::to_string(std::max<long long>(2, (timeout_.count() + 999) / 1000));
  auto user_timeout = std::to_string(timeout_.count());
  // Earlier keywords are defaults the URL's own settings override. Keepalives and the TCP user
  // timeout notice a database host that vanished without closing the connection.
  const char* keys[] = {"connect_timeout", "application_name", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                        "dbname", nullptr};
  const char* values[] = {seconds.c_str(), "user-activity-service", "10", "5", "3",
                          user_timeout.c_str(), url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    why = "cannot connect to " + url_hosts(url_) + ": " + first_line(PQerrorMessage(conn_));
    disconnect(); // a connection that failed still holds libpq's memory
    up_ = false;
    return false;
  }
  try {
    migrate();
  } catch (const std::exception& e) {
    why = std::string{"cannot bring the schema up to date: "} + e.what();
    disconnect();
    up_ = false;
    return false;
  }
  {
    std::lock_guard<std::mutex> lock{cancel_mutex_};
    canceller_ = PQgetCancel(conn_);
  }
  up_ = true;
  return true;
}

void store::migrate() {
  auto exec = [&](const std::string& sql) {
    result r{PQexec(conn_, sql.c_str())};
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK)
      throw std::runtime_error{first_line(PQresultErrorMessage(r.get()))};
    return r;
  };
  auto lock = std::to_string(migration_lock);
  exec("SELECT pg_advisory_lock(" + lock + ")");
  try {
    exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
         "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    auto current = exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    int version = std::atoi(PQgetvalue(current.get(), 0, 0));
    for (auto& m : migrations()) {
      if (m.version <= version)
        continue;
      // One transaction: a migration is applied whole, with its record, or not at all.
      try {
        exec("BEGIN");
        exec(m.sql);
        auto number = std::to_string(m.version);
        const char* values[] = {number.c_str(), m.description};
        result r{PQexecParams(conn_, "INSERT INTO schema_migrations (version, description) "
                                     "VALUES ($1::integer, $2)",
                              2, nullptr, values, nullptr, nullptr, 0)};
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
          throw std::runtime_error{first_line(PQresultErrorMessage(r.get()))};
        exec("COMMIT");
      } catch (...) {
        PQclear(PQexec(conn_, "ROLLBACK"));
        throw;
      }
      log::info("Database schema migrated", {{"version", m.version}, {"change", m.description}});
    }
  } catch (...) {
    PQclear(PQexec(conn_, ("SELECT pg_advisory_unlock(" + lock + ")").c_str()));
    throw;
  }
  exec("SELECT pg_advisory_unlock(" + lock + ")");
}

caf::expected<store::result> store::run(const char* sql, const std::vector<std::string>& params,
                                        uint64_t writes) {
  auto stopping = [] {
    return make_error(store_error::unavailable, "cancelled: the service is stopping");
  };
  auto cancelled = [this] {
    std::lock_guard<std::mutex> lock{cancel_mutex_};
    return cancelled_;
  };
  // Before connecting too: a stopping service waits for no connection either.
  if (cancelled())
    return stopping();
  std::string why;
  if (!connected(why))
    return make_error(store_error::unavailable, why);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params)
    values.push_back(p.c_str());
  {
    std::lock_guard<std::mutex> lock{cancel_mutex_};
    if (cancelled_)
      return stopping();
    running_ = writes;
  }
  result r{PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0)};
  {
    std::lock_guard<std::mutex> lock{cancel_mutex_};
    running_.reset();
  }
  auto status = PQresultStatus(r.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    up_ = true; // the server answers again after a failure the connection outlived (a deadlock)
    return r;
  }
  if (cancelled())
    return stopping(); // not the database's failure: it stays up as far as anyone asks
  auto message = first_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
  if (transient(conn_, r.get())) {
    up_ = false;
    return make_error(store_error::unavailable, message);
  }
  return make_error(store_error::failed, message);
}

std::optional<uint64_t> store::cancel() {
  std::lock_guard<std::mutex> lock{cancel_mutex_};
  cancelled_ = true;
  if (!running_ || !canceller_)
    return std::nullopt;
  // A request over a connection of its own: the server ends the statement with an error, which
  // rolls it back, or ignores the request if the statement has finished. The store's thread
  // takes this lock before it reads the outcome, so it finds cancelled_ set.
  char error[256];
  if (!PQcancel(canceller_, error, sizeof error)) {
    log::warn("Cancelling the database call failed", {{"error", first_line(error)}});
    return std::nullopt;
  }
  return running_;
}

void store::probe() {
  // A query, not only the connection's state: a server that went away is noticed on use.
  run("SELECT 1", {});
}

caf::expected<store::result> store::insert(const std::vector<event>& batch,
                                           const std::vector<kafka::partition_offset>& origins,
                                           const std::vector<size_t>& which,
                                           const std::vector<kafka::partition_offset>& resume) {
  std::vector<std::string> columns(11, "{");
  for (auto& p : resume) {
    add_element(columns[8], p.topic);
    add_element(columns[9], std::to_string(p.partition));
    add_element(columns[10], std::to_string(p.offset));
  }
  for (auto i : which) {
    auto& e = batch[i];
    add_element(columns[0], e.event_id);
    add_element(columns[1], e.user_id);
    add_element(columns[2], e.event_type);
    add_element(columns[3], e.timestamp);
    add_element(columns[4], e.payload);
    add_element(columns[5], i < origins.size() ? std::to_string(origins[i].partition) : "-1");
    add_element(columns[6], i < origins.size() ? std::to_string(origins[i].offset) : "-1");
    add_element(columns[7], trace_id_of(e.traceparent)); // "": stored as NULL
  }
  for (auto& c : columns)
    c += '}';
  columns.push_back(group_);
  return run(insert_sql, columns, which.size());
}

caf::expected<std::vector<write_outcome>>
store::add_if_new(const std::vector<event>& batch,
                  const std::vector<kafka::partition_offset>& origins,
                  const std::vector<kafka::partition_offset>& resume) {
  std::vector<write_outcome> outcomes(batch.size());
  std::vector<size_t> storable;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (holds_nul(batch[i]))
      outcomes[i] = {write_status::rejected, "PostgreSQL text cannot hold the character U+0000"};
    else
      storable.push_back(i);
  }
  // Which eventIds the statement stored; the first event with each is the one stored, any
  // later one in the batch a duplicate.
  auto take_stored = [&](pg_result* rows, const std::vector<size_t>& which) {
    std::unordered_set<std::string> stored;
    for (int row = 0; row < PQntuples(rows); ++row)
      stored.insert(PQgetvalue(rows, row, 0));
    for (auto i : which)
      outcomes[i].status = stored.erase(batch[i].event_id) > 0 ? write_status::added
                                                                : write_status::duplicate;
  };
  if (storable.empty())
    return outcomes;
  // A position never passes an event refused here: the consumer dead-letters it once this answer
  // comes, and should its partition move before that, the next owner must read it again.
  auto bounded = resume;
  for (size_t i = 0; i < batch.size() && i < origins.size(); ++i)
    if (outcomes[i].status == write_status::rejected)
      for (auto& p : bounded)
        if (p.topic == origins[i].topic && p.partition == origins[i].partition)
          p.offset = std::min(p.offset, origins[i].offset);
  auto rows = insert(batch, origins, storable, bounded);
  if (rows) {
    take_stored(rows->get(), storable);
    return outcomes;
  }
  if (rows.error() == store_error::unavailable)
    return std::move(rows.error());
  // Some event's data was refused, which fails the statement for all: store them one by one,
  // so that only the ones refused are rejected. The read positions wait for a later batch.
  for (auto i : storable) {
    auto one = insert(batch, origins, {i}, {});
    if (one)
      take_stored(one->get(), {i});
    else if (one.error() == store_error::unavailable)
      return std::move(one.error()); // those stored so far are found as duplicates on the retry
    else
      outcomes[i] = {write_status::rejected, detail_of(one.error())};
  }
  return outcomes;
}

caf::expected<std::vector<kafka::partition_offset>>
store::positions(const std::vector<kafka::partition_offset>& committed) {
  // By topic, the array literals of its partitions with a commit, and of those without.
  std::map<std::string, std::pair<std::string, std::string>> by_topic;
  for (auto& p : committed) {
    auto& lists = by_topic.emplace(p.topic, std::make_pair("{", "{")).first->second;
    auto& numbers = p.offset >= 0 ? lists.first : lists.second;
    numbers += (numbers.size() > 1 ? "," : "") + std::to_string(p.partition);
  }
  std::vector<kafka::partition_offset> known;
  for (auto& [topic, lists] : by_topic) {
    if (lists.second.size() > 1) {
      auto forgotten = run(forget_positions_sql, {group_, topic, lists.second + "}"});
      if (!forgotten)
        return std::move(forgotten.error());
    }
    auto rows = run(positions_sql, {group_, topic, lists.first + "}"});
    if (!rows)
      return std::move(rows.error());
    for (int row = 0; row < PQntuples(rows->get()); ++row)
      known.push_back({topic, std::atoi(PQgetvalue(rows->get(), row, 0)),
                       std::atoll(PQgetvalue(rows->get(), row, 1))});
  }
  return known;
}

std::string store::json_array(pg_result* rows, int count) {
  std::string array = "[";
  for (int row = 0; row < count; ++row) {
    event e{PQgetvalue(rows, row, 0), PQgetvalue(rows, row, 1), PQgetvalue(rows, row, 2),
            PQgetvalue(rows, row, 3), PQgetvalue(rows, row, 4)};
    if (row > 0)
      array += ',';
    append_json(array, e);
  }
  array += ']';
  return array;
}

caf::expected<event_page> store::read(const event_query& query) {
  std::string sql = std::string{"SELECT "} + event_columns + " FROM events WHERE seq > $1";
  std::vector<std::string> params{std::to_string(query.after)};
  if (!query.user_id.empty()) {
    params.push_back(query.user_id);
    sql += " AND user_id = $" + std::to_string(params.size());
  }
  if (!query.event_type.empty()) {
    params.push_back(query.event_type);
    sql += " AND event_type = $" + std::to_string(params.size());
  }
  // One row more than the page: whether a next page exists.
  auto wanted = query.limit == 0 ? read_chunk : static_cast<int>(query.limit);
  params.push_back(std::to_string(wanted + 1));
  sql += " ORDER BY seq LIMIT $" + std::to_string(params.size());

  event_page page;
  std::string all;
  while (true) {
    auto rows = run(sql.c_str(), params);
    if (!rows)
      return std::move(rows.error());
    int count = PQntuples(rows->get());
    int taken = std::min(count, wanted);
    auto chunk = json_array(rows->get(), taken);
    bool more = count > wanted;
    if (query.limit != 0) {
      if (more)
        page.next = std::stoull(PQgetvalue(rows->get(), taken - 1, 5));
      page.json = shared_text::of(std::move(chunk));
      return page;
    }
    // Everything: chunk after chunk into one array.
    if (taken > 0) {
      all += all.empty() ? "[" : ",";
      all.append(chunk, 1, chunk.size() - 2);
    }
    if (!more)
      break;
    params.front() = PQgetvalue(rows->get(), taken - 1, 5);
  }
  all += all.empty() ? "[]" : "]";
  page.json = shared_text::of(std::move(all));
  return page;
}

caf::expected<std::string> store::find(const std::string& event_id) {
  if (!is_uuid(event_id))
    return make_error(store_error::not_found);
  auto sql = std::string{"SELECT "} + event_columns + " FROM events WHERE event_id = $1";
  auto rows = run(sql.c_str(), {event_id});
  if (!rows)
    return std::move(rows.error());
  if (PQntuples(rows->get()) == 0)
    return make_error(store_error::not_found);
  auto array = json_array(rows->get(), 1);
  return array.substr(1, array.size() - 2);
}

caf::expected<uint64_t> store::erase_user(const std::string& user_id) {
  auto rows = run("DELETE FROM events WHERE user_id = $1", {user_id});
  if (!rows)
    return std::move(rows.error());
  return std::stoull(PQcmdTuples(rows->get()));
}

caf::expected<uint64_t> store::expire(std::chrono::system_clock::time_point cutoff,
                                      uint64_t at_most) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(cutoff.time_since_epoch());
  // Among the oldest rows by seq, not by a search of stored_at: rows are stored in seq order, so
  // the expired ones come first, and a look at the oldest few is an index range however large
  // the table (the search scanned all of it while nothing had expired: 1.3 s at 1,000,000 rows).
  auto rows = run("DELETE FROM events WHERE seq IN (SELECT seq FROM "
                  "(SELECT seq, stored_at FROM events ORDER BY seq LIMIT $2::bigint) AS oldest "
                  "WHERE stored_at < to_timestamp($1::bigint))",
                  {std::to_string(seconds.count()), std::to_string(at_most)});
  if (!rows)
    return std::move(rows.error());
  return std::stoull(PQcmdTuples(rows->get()));
}

} // namespace uas::postgres
