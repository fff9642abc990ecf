// The consumer client on librdkafka: joins the group, polls on its own thread and hands batches
// of records to its listener; commits only the positions it is given.
#pragma once

#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "core/config.hpp"
#include "core/kafka_clients.hpp"
#include "kafka/settings.hpp"

namespace uas::kafka {

class rdkafka_consumer final : public consumer_client {
public:
  rdkafka_consumer(const config& cfg, const std::string& bootstrap);
  // Stops polling and closes, if stop() has not.
  ~rdkafka_consumer() override;

  // Subscribes and starts the polling thread; records and revocations go to `listener`.
  void start(consumer_listener& listener);
  // Stops polling, commits what the listener says is done, and leaves the group.
  void stop();

  void commit(const std::vector<partition_offset>& offsets) override;
  void pause() override;
  void resume() override;

  // Whether the consumer has joined its group and the group is steady, as of librdkafka's last
  // statistics (at most 1 s old).
  bool joined() const { return joined_.load(); }

private:
  static void on_rebalance(rd_kafka_t* client, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void on_commit(rd_kafka_t* client, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque);
  // Hands the leaving partitions' done positions to the group before they go; says what their
  // next owner will read again when that is refused or too late.
  void revoke(rd_kafka_t* client, rd_kafka_topic_partition_list_t* partitions);
  // Sets, in `assigned`, where each partition starts when the listener knows its events are
  // stored past the group's last commit (a commit that a rebalance refused, or that a killed
  // member never sent): reading from the commit would process them twice. "3:1200,7:988": the
  // partitions moved so, for the log.
  std::string start_after_stored(rd_kafka_t* client, rd_kafka_topic_partition_list_t* assigned);
  // "0:120,1:98": where the next owner of these partitions starts, as far as this member knows
  // (its last commit the broker acknowledged; "none" before the first).
  std::string last_commits(const rd_kafka_topic_partition_list_t* partitions) const;
  void poll_loop();
  // Gives the records polled so far to the listener.
  void hand_over();
  void on_statistics(const client_health& health);
  // The partitions owned from now on, for /metrics.
  void set_assigned(std::set<int32_t> partitions);
  // Says once, at the first assignment that is not the whole topic, that this instance's view
  // of the events is partial: with the store in memory, each member keeps only what it read.
  void warn_if_partial_view(rd_kafka_t* client);
  // Pauses or resumes every partition assigned now.
  void set_paused(bool paused);

  // After this many records, the first poll that finds nothing returns free memory to the system.
  static constexpr size_t trim_after_records = 10'000;

  rd_kafka_t* client_;
  std::string topic_;
  std::string group_;
  // Touched only on the polling thread, where librdkafka serves every callback.
  std::vector<record> batch_;
  std::set<int32_t> assigned_;
  std::map<int32_t, int64_t> acknowledged_; // the last commit the broker took, by partition
  bool memory_store_;
  bool warned_partial_view_ = false;
  consumer_listener* listener_ = nullptr;
  std::atomic<bool> polling_{false};
  std::atomic<bool> joined_{false};
  std::atomic<bool> paused_{false}; // partitions assigned meanwhile are paused on assignment
  std::thread poller_;
};

} // namespace uas::kafka
