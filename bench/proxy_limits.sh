#!/usr/bin/env bash
# Issue 13's load items, with the proxy of this tree and a baseline build side by side in
# one run (KEYWRAP_BASELINE=PATH, e.g. a release build of main), all on loopback:
#
#   - throughput and p50/p99 (wrk -t1 -c64, ${DURATION}s), baseline and new interleaved twice;
#   - connection flood: 2,000 idle connections from 8 loopback addresses (slowloris, each
#     reopened when closed), and meanwhile 50 legitimate requests, each on a new connection:
#     answered within 100 ms?
#   - concurrent budget race: 200 requests at once on a key with a budget of 100 tokens
#     (each answer uses 6): what is spent.
#
#   KEYWRAP_BASELINE=/path/to/old/keywrap bench/proxy_limits.sh   # env: DURATION=10
#
# Needs what bench/proxy.sh needs. Prints a markdown table for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
BASELINE=${KEYWRAP_BASELINE:?set KEYWRAP_BASELINE to the keywrap binary to compare with}

source bench/proxy_common.sh
upstream_port=$(free_port)
start_bao
"$LOADGEN" upstream "127.0.0.1:$upstream_port" &
pids+=($!)
wait_port "$upstream_port"

# The soft file-descriptor limit most shells start with; the new proxy raises its own.
ulimit -Sn 1024
declare -A port key_fast key_budget
for which in baseline new; do
    binary=$KEYWRAP
    [ "$which" = baseline ] && binary=$BASELINE
    key_fast[$which]=$("$KEYWRAP" proxy keys create "fast-$which" --rpm 1000000000 2>/dev/null)
    key_budget[$which]=$("$KEYWRAP" proxy keys create "budget-$which" --budget 100 2>/dev/null)
    port[$which]=$(free_port)
    "$binary" proxy --listen "127.0.0.1:${port[$which]}" --upstream "http://127.0.0.1:$upstream_port" \
        -s UPSTREAM_KEY=secret/bench#api_key --header 'Authorization: Bearer {UPSTREAM_KEY}' \
        --access-log off 2>"$work/proxy-$which.log" &
    pids+=($!)
    wait_port "${port[$which]}"
done

url() { echo "http://127.0.0.1:${port[$1]}/v1/chat/completions"; }
wrk_run() {
    local out
    out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -H "Authorization: Bearer ${key_fast[$1]}" "$(url "$1")")
    echo "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out") $(awk '$1 == "50%" {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")"
}
for which in baseline new; do wrk -t1 -c64 -d2s -H "Authorization: Bearer ${key_fast[$which]}" "$(url "$which")" >/dev/null; done
declare -A rps p50 p99
for round in 1 2; do
    for which in baseline new; do
        read -r r a b < <(wrk_run "$which")
        rps[$which]+="$r " p50[$which]+="$a " p99[$which]+="$b "
    done
done

field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
declare -A flood_answered flood_failed flood_p99 flood_max flood_opened
for which in baseline new; do
    # The flood's own process may hold more descriptors than the proxies under test.
    (ulimit -Sn "$(ulimit -Hn)"; exec "$LOADGEN" flood "127.0.0.1:${port[$which]}" 2000 8 12) >"$work/flood-$which.out" &
    flood=$!
    sleep 3
    out=$("$LOADGEN" probe "$(url "$which")" 50 "Authorization: Bearer ${key_fast[$which]}")
    wait "$flood"
    flood_opened[$which]=$(field opened "$(cat "$work/flood-$which.out")")
    flood_answered[$which]=$(field answered "$out") flood_failed[$which]=$(field failed "$out")
    flood_p99[$which]=$(field p99_us "$out") flood_max[$which]=$(field max_us "$out")
    sleep 6   # let the baseline recover before the next phase
done

declare -A race_ok
for which in baseline new; do
    out=$("$LOADGEN" race "$(url "$which")" 200 "Authorization: Bearer ${key_budget[$which]}" '{"max_tokens":10}')
    race_ok[$which]=$(field answered "$out")
done

ms() { awk -v us="$1" 'BEGIN {printf "%.1f ms", us / 1000}'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; soft RLIMIT_NOFILE at start 1024"
echo
echo "| measurement | baseline ($BASELINE) | this tree | ratio |"
echo "|---|---|---|---|"
b=$(awk '{print ($1+$2)/2}' <<<"${rps[baseline]}") n=$(awk '{print ($1+$2)/2}' <<<"${rps[new]}")
echo "| max throughput (req/s, mean of 2) | $b (${rps[baseline]% }) | $n (${rps[new]% }) | $(awk -v a="$n" -v b="$b" 'BEGIN {printf "%.2f", a / b}') |"
echo "| p50 at max throughput | ${p50[baseline]% } | ${p50[new]% } | |"
echo "| p99 at max throughput | ${p99[baseline]% } | ${p99[new]% } | |"
echo "| idle connections opened by the flood in 12 s | ${flood_opened[baseline]} | ${flood_opened[new]} | |"
echo "| 2,000 idle connections: legit requests answered of 50 | ${flood_answered[baseline]} (failed ${flood_failed[baseline]}) | ${flood_answered[new]} (failed ${flood_failed[new]}) | |"
echo "| ... their p99 / max latency | $(ms "${flood_p99[baseline]}") / $(ms "${flood_max[baseline]}") | $(ms "${flood_p99[new]}") / $(ms "${flood_max[new]}") | |"
echo "| budget race: 200 at once, budget 100, 6 tokens each: answered / spent | ${race_ok[baseline]} / $((6 * race_ok[baseline])) | ${race_ok[new]} / $((6 * race_ok[new])) | |"
