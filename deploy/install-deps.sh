#!/usr/bin/env bash
# Installs the Debian packages user-activity-service needs, skipping those already present.
# Usage: deploy/install-deps.sh [build|runtime|test|bench]   (default: build)
#   build    compilers, CMake and the -dev libraries
#   runtime  the shared libraries the binary links against (for the container's runtime stage)
#   test     build + the real Kafka clients the integration tests drive (kcat, python3-kafka,
#            python3-jsonschema (produced messages against docs/schemas/), Node.js for kafkajs),
#            curl, jq, openssl (test certificates), docker-compose (to validate the compose file),
#            prometheus (promtool) and haproxy (to check the monitoring and load balancer
#            configurations), and the PostgreSQL server the store's tests start themselves
#   bench    build + wrk, curl and bc for bench/run.sh, and the PostgreSQL server (with psql)
#            bench/store.sh starts
set -euo pipefail

build=(g++ cmake make pkg-config libcaf-dev librdkafka-dev libcpp-httplib-dev nlohmann-json3-dev
       libspdlog-dev catch2 libssl-dev libpq-dev prometheus-cpp-dev)
runtime=(libcaf-core0.17 librdkafka++1 librdkafka1 libcpp-httplib0.11 libspdlog1.10 libfmt9
         libssl3 libpq5 libprometheus-cpp-core1.0 ca-certificates curl)

case "${1:-build}" in
  build)   wanted=("${build[@]}") ;;
  runtime) wanted=("${runtime[@]}") ;;
  test)    wanted=("${build[@]}" kcat python3-kafka python3-jsonschema curl jq openssl docker-compose
                   prometheus haproxy postgresql-15) ;;
  bench)   wanted=("${build[@]}" wrk curl bc postgresql-15) ;;
  *) echo "usage: $0 [build|runtime|test|bench]" >&2; exit 2 ;;
esac
# kafkajs runs on Node.js; a machine that already has node and npm keeps its own.
if [ "${1:-build}" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  wanted+=(nodejs npm)
fi

install_kafkajs() {
  # kafkajs, pinned by the lock file, for the integration test that drives the service with it.
  local dir
  dir="$(dirname "$0")/../tests/integration/kafkajs"
  [ -d "$dir/node_modules/kafkajs" ] || npm ci --prefix "$dir" --no-audit --no-fund --silent
}

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${1:-build}" = test ]; then
  install_kafkajs
fi
