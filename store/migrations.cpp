#include "store/migrations.hpp"

namespace uas::postgres {

const std::vector<migration>& migrations() {
  static const std::vector<migration> all = {
    {1, "events: one row per eventId, in processing order", R"sql(
      CREATE TABLE events (
        -- The primary key is what deduplicates: across restarts and across instances.
        event_id uuid PRIMARY KEY,
        -- Processing order: the order GET /events/processed answers in, and its page cursor.
        seq bigint GENERATED ALWAYS AS IDENTITY,
        user_id text NOT NULL,
        event_type text NOT NULL,
        -- As the event carried it: text, so that it reads back exactly.
        "timestamp" text NOT NULL,
        -- The payload's compact JSON text as it arrived: jsonb would reorder its keys and refuse
        -- \u0000, which JSON allows.
        payload text NOT NULL,
        -- Where the event was read from the topic.
        kafka_partition integer NOT NULL,
        kafka_offset bigint NOT NULL,
        -- When this service stored it: what STORE_RETENTION_DAYS counts from.
        stored_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX events_by_seq ON events (seq);
      CREATE INDEX events_by_user ON events (user_id, seq);
      CREATE INDEX events_by_type ON events (event_type, seq);
    )sql"},
    {2, "events: the trace id of the request that produced each event", R"sql(
      -- The W3C trace id (32 hexadecimal digits) the event's message carried in its traceparent
      -- header, the key that finds its log lines on every instance; NULL when it carried none.
      ALTER TABLE events ADD COLUMN trace_id text;
    )sql"},
    {3, "read_positions: where reading each partition resumes, stored with its events", R"sql(
      -- Written in the same statement as the events read before it, so that a partition's next
      -- owner starts past them even when the group's commit was refused or never sent: nothing
      -- is read twice across a rebalance, a shutdown or a crash.
      CREATE TABLE read_positions (
        consumer_group text NOT NULL,
        topic text NOT NULL,
        kafka_partition integer NOT NULL,
        -- The next offset to read: every message before it is in events, or was dead-lettered.
        next_offset bigint NOT NULL,
        PRIMARY KEY (consumer_group, topic, kafka_partition)
      );
    )sql"},
  };
  return all;
}

} // namespace uas::postgres
