#!/usr/bin/env bash
# Issue 14: the proxy with the Redis limits store (`[proxy] store`) against the same build
# with in-process limits, side by side in one run, all on loopback:
#
#   - max throughput and p50/p99 (wrk -t1 -c64, ${DURATION}s), in-process and Redis
#     interleaved twice, a key with an rpm and a tpm limit (so every request is admitted
#     and settled by the store);
#   - p99 at a fixed 1,000 req/s (loadgen rate, open loop, ${RATE_SECONDS}s): direct to the
#     stand-in upstream, through the in-process proxy, through the Redis proxy; the
#     "added" p99 is the proxy's p99 minus the direct one.
#
#   bench/proxy_store.sh          # env: DURATION=10 RATE_SECONDS=10
#
# Needs redis-server (scripts/install-test-deps) plus what bench/proxy.sh needs. Prints a
# markdown table for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
RATE_SECONDS=${RATE_SECONDS:-10}

source bench/proxy_common.sh
REDIS=${KEYWRAP_TEST_REDIS:-redis-server}
upstream_port=$(free_port) redis_port=$(free_port)
"$REDIS" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --logfile redis.log &
pids+=($!)
start_bao
wait_port "$redis_port"
"$LOADGEN" upstream "127.0.0.1:$upstream_port" &
pids+=($!)
wait_port "$upstream_port"

declare -A port key
for which in local redis; do
    dir="$work/$which"
    mkdir -p "$dir"
    port[$which]=$(free_port)
    {
        echo '[env]'
        echo 'UPSTREAM_KEY = "secret/bench#api_key"'
        echo '[proxy]'
        echo "listen = \"127.0.0.1:${port[$which]}\""
        echo 'access_log = "off"'
        [ "$which" = redis ] && echo "store = \"redis://127.0.0.1:$redis_port/0\""
        echo '[[proxy.routes]]'
        echo 'prefix = "/"'
        echo "upstream = \"http://127.0.0.1:$upstream_port\""
        echo 'headers = { Authorization = "Bearer {UPSTREAM_KEY}" }'
    } >"$dir/keywrap.toml"
    key[$which]=$(cd "$dir" && "$KEYWRAP" proxy keys create "fast-$which" --rpm 1000000000 --tpm 1000000000000 2>/dev/null)
    (cd "$dir" && KEYWRAP_TRUST="$dir/keywrap.toml" exec "$KEYWRAP" proxy 2>"$work/proxy-$which.log") &
    pids+=($!)
    wait_port "${port[$which]}"
done

url() { echo "http://127.0.0.1:${port[$1]}/v1/chat/completions"; }
wrk_run() {
    local out
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -H "Authorization: Bearer ${key[$1]}" "$(url "$1")")
    echo "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out") $(awk '$1 == "50%" {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $NF}' <<<"$out")"
}
for which in local redis; do wrk -t1 -c64 -d2s -H "Authorization: Bearer ${key[$which]}" "$(url "$which")" >/dev/null; done
declare -A rps p50 p99 bad
for round in 1 2; do
    for which in local redis; do
        read -r r a b c < <(wrk_run "$which")
        rps[$which]+="$r " p50[$which]+="$a " p99[$which]+="$b " bad[$which]+="${c:-0} "
    done
done

field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
declare -A rate_p50 rate_p99 rate_err
direct_out=$("$LOADGEN" rate "http://127.0.0.1:$upstream_port/v1/chat/completions" 1000 "$RATE_SECONDS" 10)
for which in local redis; do
    out=$("$LOADGEN" rate "$(url "$which")" 1000 "$RATE_SECONDS" 10 "Authorization: Bearer ${key[$which]}")
    rate_p50[$which]=$(field p50_us "$out") rate_p99[$which]=$(field p99_us "$out") rate_err[$which]=$(field errors "$out")
done
direct_p99=$(field p99_us "$direct_out") direct_p50=$(field p50_us "$direct_out")

us() { awk -v us="$1" 'BEGIN {printf "%.2f ms", us / 1000}'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
echo "| measurement | in-process limits | Redis store | ratio |"
echo "|---|---|---|---|"
l=$(awk '{print ($1+$2)/2}' <<<"${rps[local]}") r=$(awk '{print ($1+$2)/2}' <<<"${rps[redis]}")
echo "| max throughput (req/s, mean of 2) | $l (${rps[local]% }) | $r (${rps[redis]% }) | $(awk -v a="$r" -v b="$l" 'BEGIN {printf "%.2f", a / b}') |"
echo "| p50 at max throughput | ${p50[local]% } | ${p50[redis]% } | |"
echo "| p99 at max throughput | ${p99[local]% } | ${p99[redis]% } | |"
echo "| non-2xx answers at max throughput | ${bad[local]% } | ${bad[redis]% } | |"
echo "| 1,000 req/s: p50 / p99 (direct to upstream: $(us "$direct_p50") / $(us "$direct_p99")) | $(us "${rate_p50[local]}") / $(us "${rate_p99[local]}") | $(us "${rate_p50[redis]}") / $(us "${rate_p99[redis]}") | |"
echo "| 1,000 req/s: p99 added over direct | $(us $((rate_p99[local] - direct_p99))) | $(us $((rate_p99[redis] - direct_p99))) | |"
echo "| 1,000 req/s: errors | ${rate_err[local]} | ${rate_err[redis]} | |"
