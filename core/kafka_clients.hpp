// The small interfaces the actors use to reach Kafka. librdkafka stays behind them, so actor-level
// tests can put fakes in their place and drive every delivery and every record by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace uas::kafka {

// One header of a message: a name and bytes, which Kafka allows to be null.
struct header {
  std::string name;
  std::string value;
  bool is_null = false;

  friend bool operator==(const header& a, const header& b) {
    return a.name == b.name && a.value == b.value && a.is_null == b.is_null;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, header& x) {
  return f(x.name, x.value, x.is_null);
}

using headers = std::vector<header>;

// A message to produce: its key and value exactly as they go on the wire (either may be null,
// which a dead letter keeps), and its headers in order.
struct outgoing_message {
  bool has_key = true;
  std::string key;
  bool has_value = true;
  std::string value;
  kafka::headers headers;
};

// What became of one produced record: an empty error once the broker acknowledged it, else why
// it was not delivered, and whether trying again could help.
struct delivery {
  uint64_t id = 0; // as given to produce
  std::string error;
  // The broker or client refused the record itself (its size, say): sending it again fails alike.
  bool permanent = false;
};

class producer_client {
public:
  virtual ~producer_client() = default;
  // Hands a record over to the client's topic without blocking; its delivery, tagged `id`, is
  // reported exactly once.
  virtual void produce(const outgoing_message& message, uint64_t id) = 0;
  // From now on `waiting` is called, on a client thread, whenever deliveries may be waiting to be
  // taken. It must be quick: it only tells the owner to come and take them.
  virtual void notify_deliveries(std::function<void()> waiting) = 0;
  // The deliveries reported since the last call, without blocking.
  virtual std::vector<delivery> take_deliveries() = 0;
  // Waits up to `timeout` for every record handed over to be delivered or failed; false if some
  // are still outstanding.
  virtual bool flush(std::chrono::milliseconds timeout) = 0;
  // False while every broker is known to be down, as the client last saw them: a record handed
  // over now waits for a reconnection, or fails. True until known otherwise.
  virtual bool brokers_up() const { return true; }
};

// One message read from the topic: where it sits, and everything it carries, byte for byte.
struct record {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool has_value = false; // false for a null (tombstone) value
  std::string value;
  bool has_key = false; // false for a null key
  std::string key;
  kafka::headers headers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record& x) {
  return f(x.topic, x.partition, x.offset, x.has_value, x.value, x.has_key, x.key, x.headers);
}

// A partition and a position in it; committed, `offset` is the next message to read.
struct partition_offset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;

  friend bool operator==(const partition_offset& a, const partition_offset& b) {
    return a.topic == b.topic && a.partition == b.partition && a.offset == b.offset;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, partition_offset& x) {
  return f(x.topic, x.partition, x.offset);
}

class consumer_client {
public:
  virtual ~consumer_client() = default;
  // Commits these positions for the group, without waiting: within a second, and in any case
  // before their partitions move to another member or the consumer closes.
  virtual void commit(const std::vector<partition_offset>& offsets) = 0;
  // Stops fetching from every partition assigned now or later, until resume(). Records fetched
  // before may still arrive. Does not block.
  virtual void pause() = 0;
  virtual void resume() = 0;
};

// What a consumer client tells its owner, from the client's own polling thread.
class consumer_listener {
public:
  virtual ~consumer_listener() = default;
  // A batch of records, in partition order.
  virtual void on_records(std::vector<record> batch) = 0;
  // These partitions are leaving this consumer (rebalance or close). Blocks until the owner says
  // which positions are done, so they are committed before the partitions go.
  virtual std::vector<partition_offset> on_revoked(const std::vector<partition_offset>& partitions) = 0;
  // Partitions are coming to this consumer, with the group's last commit of each (`offset`
  // below 0: none): where reading them starts, for those whose owner knows more than the
  // commits (read positions stored with the events); nothing for the others. Blocks until it
  // knows.
  virtual std::vector<partition_offset> on_assigned(const std::vector<partition_offset>& committed) {
    (void)committed;
    return {};
  }
  // The polling thread is about to end, the consumer closed: nothing more follows.
  virtual void on_closed() {}
};

} // namespace uas::kafka
