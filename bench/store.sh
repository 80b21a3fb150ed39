#!/usr/bin/env bash
# Benchmark of the Redis admission store (src/proxy/store): admit+settle per second with 64
# concurrent callers, and the latency one admission adds at a steady 1,000 requests/s,
# against the in-process limits, in one run, on a redis-server on loopback.
#
#   bench/store.sh   # env: SECONDS_EACH=5 CONCURRENCY=64 RATE=1000
#
# Needs: cargo, redis-server (scripts/install-test-deps). Prints a markdown table for
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-5}
CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-1000}

cargo build --release --quiet --example store_bench
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
target/release/examples/store_bench "redis://127.0.0.1:$port/0" "$SECONDS_EACH" "$CONCURRENCY" "$RATE"
