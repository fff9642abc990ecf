#!/usr/bin/env bash
# The PostgreSQL store's benchmark (issue 21): builds Release, starts a PostgreSQL server of its
# own (initdb and pg_ctl as the postgres user, fsync on, as a real one runs) and a Kafka-protocol
# broker in a process of its own, and prints
#   - the drain of 100,000 events (1,000 userIds over 8 partitions) into PostgreSQL, two rounds;
#   - GET /events/processed's first page, and others, with 1,000,000 rows stored;
#   - what the database spends planning and running the hot statements (whether preparing them
#     would pay).
# Load goes to 127.0.0.1 only; every process started here is stopped on exit. About three
# minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh

pg=/usr/lib/postgresql/15/bin
chmod 755 "$work" # the server, run as postgres, keeps its files below it
# PostgreSQL refuses to run as root: as root, its programs run as the postgres user.
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
trap 'stop_started
      [ -d "$work/pg" ] && as_postgres "$pg/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1
      rm -rf "$work"' EXIT

mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
pg_port=$(free_port)
as_postgres "$pg/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
as_postgres "$pg/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
store_url="postgresql://postgres@127.0.0.1:$pg_port/postgres"
sql() { psql "$store_url" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# The service on the database, alive (its readiness waits for the group, which a drain's timing
# starts from anyway); sets $port, $pid.
start_stored() { WAIT=live start_service STORE_URL="$store_url" LOG_LEVEL=warn "$@"; }

echo "== drain: 100,000 events (1,000 userIds, 8 partitions) into PostgreSQL, a new group each round"
# The mock broker keeps about 5 MB per partition: 100,000 events of ~190 bytes need 6 or more.
start_broker user-activity-events drain-events:8
"$bin/bench/bench_produce" "$broker" drain-events 100000
for round in 1 2; do
  start_stored KAFKA_TOPIC=drain-events KAFKA_CONSUMER_GROUP="drain-$round-$RANDOM"
  # From the first event consumed until the consumer has had every one stored (which it counts
  # once the database's transaction committed).
  rate=$(/usr/bin/python3 bench/drain_rate.py "$port" 100000 events_processed_total)
  echo "round $round: drain_events_per_s $rate (rows: $(sql 'SELECT count(*) FROM events'))"
  stop_service
  sql 'TRUNCATE events' # the next round stores them anew
done
stop_broker

echo "== 1,000,000 rows: 10,000 userIds, three event types, written by SQL"
# Filling is set-up, not a figure: without fsync it takes seconds rather than minutes here. The
# reads below write nothing, so they do not depend on it.
as_postgres "$pg/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -m fast \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" restart >/dev/null
start_broker user-activity-events:8
sql "INSERT INTO events (event_id, user_id, event_type, \"timestamp\", payload, kafka_partition, kafka_offset)
     SELECT gen_random_uuid(), 'user-' || (i % 10000), (ARRAY['LOGIN','LOGOUT','PRODUCT_VIEW'])[1 + i % 3],
            to_char(now() AT TIME ZONE 'UTC' + i * interval '1 ms', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
            '{\"productId\":\"p-' || (i % 5000) || '\",\"source\":\"bench\"}', i % 8, i / 8
     FROM generate_series(1, 1000000) AS i"
sql 'VACUUM ANALYZE events'
echo "rows $(sql 'SELECT count(*) FROM events'), table and indexes $(sql "SELECT pg_size_pretty(pg_total_relation_size('events'))")"
start_stored
deep=$(sql 'SELECT seq FROM events ORDER BY seq OFFSET 900000 LIMIT 1')
one=$(sql 'SELECT event_id FROM events ORDER BY seq OFFSET 500000 LIMIT 1')
echo "== GET at 1,000,000 rows: 300 requests each over one connection"
for path in "/events/processed?limit=100" "/events/processed?limit=1000" \
            "/events/processed?limit=100&after=$deep" "/events/processed?userId=user-42&limit=100" \
            "/events/processed?eventType=LOGOUT&limit=100" \
            "/events/processed?userId=user-42&eventType=LOGOUT&limit=100" "/events/processed/$one"; do
  echo "$path: $("$bin/bench/bench_pages" "$port" "$path" 300)"
done
echo "GET /events/processed (all 1,000,000): $(curl -s -o /dev/null -w '%{time_total} s, %{size_download} bytes' "localhost:$port/events/processed")"
stop_service
stop_broker

echo "== the database's own time (EXPLAIN ANALYZE: the third of three runs in one session, as the service's one connection would)"
explain() { # label sql
  echo "$1: $(psql "$store_url" -XAtq -v ON_ERROR_STOP=1 -c "EXPLAIN (ANALYZE, TIMING OFF) $2" \
    -c "EXPLAIN (ANALYZE, TIMING OFF) $2" -c "EXPLAIN (ANALYZE, TIMING OFF) $2" \
    | grep -E '^(Planning|Execution) Time' | tail -2 | tr '\n' ' ')"
}
explain "first page (100)" "SELECT event_id, user_id, event_type, \"timestamp\", payload, seq FROM events WHERE seq > 0 ORDER BY seq LIMIT 101"
explain "one user's first page" "SELECT event_id, user_id, event_type, \"timestamp\", payload, seq FROM events WHERE seq > 0 AND user_id = 'user-42' ORDER BY seq LIMIT 101"
explain "retention with nothing to expire" "DELETE FROM events WHERE seq IN (SELECT seq FROM (SELECT seq, stored_at FROM events ORDER BY seq LIMIT 10000) AS oldest WHERE stored_at < now() - interval '30 days')"
# A poll's batch as the service writes it: 1,000 new events in one statement, rolled back.
batch="INSERT INTO events (event_id, user_id, event_type, \"timestamp\", payload, kafka_partition, kafka_offset)
  SELECT e.event_id, e.user_id, e.event_type, e.ts, e.payload, e.kafka_partition, e.kafka_offset
  FROM unnest((SELECT array_agg(gen_random_uuid()) FROM generate_series(1, 1000)),
              array_fill('user-1'::text, ARRAY[1000]), array_fill('LOGIN'::text, ARRAY[1000]),
              array_fill('2026-11-30T19:00:00.000Z'::text, ARRAY[1000]), array_fill('{}'::text, ARRAY[1000]),
              array_fill(0, ARRAY[1000]), array_fill(0::bigint, ARRAY[1000]))
    WITH ORDINALITY AS e(event_id, user_id, event_type, ts, payload, kafka_partition, kafka_offset, n)
  ORDER BY e.n ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
echo "a poll's batch of 1,000: $(psql "$store_url" -XAtq -c BEGIN -c "EXPLAIN (ANALYZE, TIMING OFF) $batch" \
  -c "EXPLAIN (ANALYZE, TIMING OFF) $batch" -c "EXPLAIN (ANALYZE, TIMING OFF) $batch" -c ROLLBACK \
  | grep -E '^(Planning|Execution) Time' | tail -2 | tr '\n' ' ')"
