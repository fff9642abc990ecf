// The store's back end on PostgreSQL, through libpq: events live in one table whose primary key
// is the eventId, so the database deduplicates them, across restarts and across instances. Every
// call blocks: the store actor that holds this runs on a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/store_backend.hpp"

struct pg_cancel;
struct pg_conn;
struct pg_result;

namespace uas::postgres {

// Why libpq cannot read `url` as connection settings; empty if it can. Never quotes the URL.
std::string check_url(const std::string& url);

class store final : public store_backend {
public:
  // Connects, giving up after `timeout`, and brings the schema up to date. Throws
  // std::runtime_error, without the password, if the database cannot be reached or migrated.
  // Read positions are kept for `consumer_group`.
  store(std::string url, std::chrono::milliseconds timeout, std::string consumer_group);
  ~store() override;

  caf::expected<std::vector<write_outcome>>
  add_if_new(const std::vector<event>& batch, const std::vector<kafka::partition_offset>& origins,
             const std::vector<kafka::partition_offset>& resume) override;
  caf::expected<std::vector<kafka::partition_offset>>
  positions(const std::vector<kafka::partition_offset>& partitions) override;
  caf::expected<event_page> read(const event_query& query) override;
  caf::expected<std::string> find(const std::string& event_id) override;
  caf::expected<uint64_t> erase_user(const std::string& user_id) override;
  caf::expected<uint64_t> expire(std::chrono::system_clock::time_point cutoff,
                                 uint64_t at_most) override;
  bool up() const override { return up_.load(); }
  bool remote() const override { return true; }
  void probe() override;
  // With libpq's cancel request (PQcancel), the one call libpq allows from another thread.
  std::optional<uint64_t> cancel() override;

private:
  struct result_deleter {
    void operator()(pg_result* r) const;
  };
  using result = std::unique_ptr<pg_result, result_deleter>;

  // A connection with an up-to-date schema, made again if it was lost; false if there is none.
  bool connected(std::string& why);
  void migrate();
  // Closes the connection, if there is one.
  void disconnect();
  // Runs `sql` with text parameters, a statement storing `writes` events; the rows, or why not
  // (store_error unavailable or failed).
  caf::expected<result> run(const char* sql, const std::vector<std::string>& params,
                            uint64_t writes = 0);
  // One INSERT for the events at `which`, with the read positions `resume`; the eventIds it
  // stored.
  caf::expected<result> insert(const std::vector<event>& batch,
                               const std::vector<kafka::partition_offset>& origins,
                               const std::vector<size_t>& which,
                               const std::vector<kafka::partition_offset>& resume);
  // Rows of (event_id, user_id, event_type, timestamp, payload, ...) as a JSON array.
  static std::string json_array(pg_result* rows, int count);

  std::string url_;
  std::chrono::milliseconds timeout_;
  std::string group_;
  pg_conn* conn_ = nullptr;
  std::atomic<bool> up_{false};
  // Shared with cancel()'s thread, under cancel_mutex_: how to cancel conn_'s query, the call
  // running on it (the events it writes), and whether cancel() has been called.
  std::mutex cancel_mutex_;
  pg_cancel* canceller_ = nullptr;
  std::optional<uint64_t> running_;
  bool cancelled_ = false;
};

} // namespace uas::postgres
