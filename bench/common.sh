# What the benchmarks share, sourced by bench/run.sh and bench/store.sh: the Release build,
# a scratch folder and the processes started (all stopped on exit), a broker in a process of its
# own, and the service on a free port. Run from the repository's root. BENCH_BIN=DIR runs the
# binaries in DIR instead (DIR/user-activity-service, DIR/bench/...) and builds nothing: to set
# one build against another, turn by turn.
deploy/install-deps.sh bench
[ -z "${BENCH_BIN:-}" ] && cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DUAS_BUILD_BENCH=ON -DBUILD_TESTING=OFF >/dev/null
[ -z "${BENCH_BIN:-}" ] && cmake --build build-bench -j"$(nproc)" >/dev/null

bin=${BENCH_BIN:-build-bench}
work=$(mktemp -d)
pids=()
# Stops every process started here; a script with more to undo sets its own EXIT trap that
# calls this first.
stop_started() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop_started; rm -rf "$work"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file text
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}
# Starts the service on a free port with extra VAR=value settings and waits until it is ready
# (or only alive, with WAIT=live); sets $port, $pid, $log.
start_service() {
  port=$(free_port)
  log="$work/service-$port.log"
  env PORT="$port" KAFKA_BROKERS="$broker" "$@" "$bin/user-activity-service" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  # Ready: the producer reaches the broker and the consumer has joined its group.
  local probe=/health/ready
  [ "${WAIT:-ready}" = live ] && probe=/health
  for _ in $(seq 300); do curl -sf "localhost:$port$probe" >/dev/null && return 0; sleep 0.1; done
  echo "the service did not get ready:" >&2; cat "$log" >&2; return 1
}
stop_service() { kill -TERM "$pid"; wait "$pid" || true; }
# Starts a fresh broker with the given topics (NAME or NAME:PARTITIONS); sets $broker. Fresh for
# every round: the mock finds a fetch's offset by walking its log, and that walk grows slower as
# the broker ages (most likely as its log's entries scatter over recycled memory), so a shared
# broker made each round's POSTs dearer than the last's (docs/performance.md, run 9).
start_broker() {
  local dir
  dir=$(mktemp -d -p "$work")
  mkfifo "$dir/in"
  "$bin/bench/bench_broker" "$@" <"$dir/in" >"$dir/out" &
  broker_pid=$!
  pids+=("$broker_pid")
  exec 3>"$dir/in" # the broker runs until this closes
  wait_for "$dir/out" ":"
  broker=$(head -1 "$dir/out")
}
stop_broker() { exec 3>&-; wait "$broker_pid" 2>/dev/null || true; }
