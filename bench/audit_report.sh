#!/usr/bin/env bash
# Benchmark: `keywrap audit report` on a generated 1 GiB OpenBao file audit log, on one core,
# side by side with `wc -l` and `cat` reading the same file (the floor for any streaming
# reader), interleaved so machine noise hits all alike.
#
# Usage: bench/audit_report.sh [SIZE_MIB] [ROUNDS]   (defaults: 1024, 3)
# KEYWRAP_BASELINE=/path/to/keywrap also times that binary (e.g. main's) in the same rounds.
# The log mimics what OpenBao 2.x writes: keywrap reads (mount lookup + KV v2 read, request
# and response, with audited X-Keywrap-* headers), plain reads by other clients, writes,
# token lookups and denied reads, each line 0.6-2 KiB with HMAC-ed tokens and values.
set -euo pipefail

SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keywrap-audit-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$WORK/audit.log"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
KEYWRAP="$ROOT/target/release/keywrap"

python3 - "$LOG" "$SIZE_MIB" <<'PY'
import random, sys, uuid
path, size = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(7)
hexs = lambda: "".join(rng.choice("0123456789abcdef") for _ in range(64))
tokens = [hexs() for _ in range(40)]
hosts = ["web-%02d" % i for i in range(20)] + ["build-%02d" % i for i in range(5)]
users = ["svc-app", "deploy", "ann", "bob", "ci"]
paths = ["team-%d/openai" % i for i in range(100)] + ["team-%d/db" % i for i in range(100)]
cis = ["github-actions repo=acme/app workflow=ci job=test", "gitlab-ci project=acme/api job_name=deploy"]
AUTH = ('"auth":{"client_token":"hmac-sha256:%(t)s","accessor":"hmac-sha256:%(a)s","display_name":"%(dn)s",'
        '"policies":["default","app"],"token_policies":["default","app"],"policy_results":{"allowed":%(ok)s%(grant)s},'
        '"token_type":"service","token_ttl":3600,"token_issue_time":"2026-11-30T05:00:00Z"}')
GRANT = ',"granting_policies":[{"name":"app","namespace_id":"root","type":"acl"}]'
REQ = ('"request":{"id":"%(id)s","client_id":"0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8=","operation":"%(op)s",'
       '"mount_point":"%(mp)s","mount_type":"%(mt)s","mount_accessor":"kv_8e12e1db","mount_running_version":"v2.7.2+builtin.bao",'
       '"mount_class":"secret","client_token":"hmac-sha256:%(t)s","client_token_accessor":"hmac-sha256:%(a)s",'
       '"namespace":{"id":"root"},"path":"%(path)s","remote_address":"10.0.%(net)d.%(ip)d","remote_port":%(port)d%(headers)s}')
HEADERS = (',"headers":{"user-agent":["keywrap/0.1.0"],"x-correlation-id":["%(cid)s"],"x-keywrap-command":["python3"],'
           '"x-keywrap-host":["%(host)s"],"x-keywrap-user":["%(user)s"]%(ci)s}')
KV_RESP = (',"response":{"mount_point":"secret/","mount_type":"kv","mount_accessor":"kv_8e12e1db","mount_running_plugin_version":"v2.7.2+builtin.bao",'
           '"mount_class":"secret","data":{"data":{"api_key":"hmac-sha256:%(h1)s","org":"hmac-sha256:%(h2)s"},'
           '"metadata":{"created_time":"2026-11-01T00:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":3}}}')
SYS_RESP = (',"response":{"mount_point":"sys/","mount_type":"system","mount_accessor":"system_0a9dd3a1","data":{"accessor":"hmac-sha256:%(h1)s",'
            '"config":{"default_lease_ttl":0,"force_no_cache":false,"max_lease_ttl":0},"description":"hmac-sha256:%(h2)s",'
            '"external_entropy_access":false,"local":false,"options":{"version":"hmac-sha256:%(h1)s"},"path":"hmac-sha256:%(h2)s",'
            '"plugin_version":"","running_plugin_version":"hmac-sha256:%(h1)s","seal_wrap":false,"type":"hmac-sha256:%(h2)s","uuid":"hmac-sha256:%(h1)s"}}')
ERR = ',"error":"1 error occurred:\\n\\t* permission denied\\n\\n"'

def entry(kind, f, resp=""):
    return '{"time":"%s","type":"%s",%s,%s%s%s}\n' % (f["time"], kind, AUTH % f, REQ % f, resp % f if resp else "", f.get("err", ""))

written, n, out, batch = 0, 0, open(path, "w"), []
seconds = 0.0
while written < size:
    n += 1
    seconds += rng.expovariate(20.0)
    s = int(seconds)
    f = {"time": "2026-11-%02dT%02d:%02d:%02d.%06dZ" % (1 + s // 86400 % 28, s // 3600 % 24, s // 60 % 60, s % 60, rng.randrange(10**6)),
         "t": rng.choice(tokens), "a": rng.choice(tokens), "dn": "token", "ok": "true", "grant": GRANT,
         "id": str(uuid.UUID(int=rng.getrandbits(128))), "net": rng.randrange(4), "ip": rng.randrange(1, 250),
         "port": rng.randrange(30000, 60000), "h1": rng.choice(tokens), "h2": rng.choice(tokens)}
    secret = rng.choice(paths)
    roll = rng.random()
    if roll < 0.7:  # a keywrap exec: mount lookup, then the read
        ci = ',"x-keywrap-ci":["%s run=%d"]' % (rng.choice(cis), n) if rng.random() < 0.3 else ""
        f["headers"] = HEADERS % {"cid": f["id"], "host": rng.choice(hosts), "user": rng.choice(users), "ci": ci}
        f.update(op="read", mp="sys/", mt="system", path="sys/internal/ui/mounts/secret/" + secret)
        batch += [entry("request", f), entry("response", f, SYS_RESP)]
        f.update(mp="secret/", mt="kv", path="secret/data/" + secret)
        if rng.random() < 0.002:
            f.update(ok="false", grant="", err=ERR)
        batch += [entry("request", f), entry("response", f, "" if f.get("err") else KV_RESP)]
    elif roll < 0.85:  # another client reading directly, no keywrap headers
        f.update(headers="", op="read", mp="secret/", mt="kv", path="secret/data/" + secret, dn="approle")
        batch += [entry("request", f), entry("response", f, KV_RESP)]
    elif roll < 0.95:  # a token lookup
        f.update(headers="", op="read", mp="auth/token/", mt="token", path="auth/token/lookup-self")
        batch += [entry("request", f), entry("response", f)]
    else:  # a write
        f.update(headers="", op="update", mp="secret/", mt="kv", path="secret/data/" + secret)
        batch += [entry("request", f), entry("response", f, KV_RESP)]
    if len(batch) > 4000:
        chunk = "".join(batch)
        out.write(chunk)
        written += len(chunk)
        batch = []
out.write("".join(batch))
out.close()
PY

BYTES=$(stat -c %s "$LOG")
echo "log: $((BYTES >> 20)) MiB, $(wc -l < "$LOG") lines"
cat "$LOG" > /dev/null  # warm the page cache

now() { date +%s.%N; }
TOOLS=(keywrap ${KEYWRAP_BASELINE:+baseline} wc cat)
declare -A TOTAL=([keywrap]=0 [baseline]=0 [wc]=0 [cat]=0)
for round in $(seq "$ROUNDS"); do
  for tool in "${TOOLS[@]}"; do
    start=$(now)
    case $tool in
      keywrap) taskset -c 0 "$KEYWRAP" audit report --log "$LOG" --format csv > "$WORK/report.csv" ;;
      baseline) taskset -c 0 "$KEYWRAP_BASELINE" audit report --log "$LOG" --format csv > "$WORK/baseline.csv" ;;
      wc) taskset -c 0 wc -l "$LOG" > /dev/null ;;
      cat) taskset -c 0 cat "$LOG" > /dev/null ;;
    esac
    elapsed=$(echo "$(now) - $start" | bc)
    TOTAL[$tool]=$(echo "${TOTAL[$tool]} + $elapsed" | bc)
    printf 'round %d  %-7s %6.2f s\n' "$round" "$tool" "$elapsed"
  done
done
for tool in "${TOOLS[@]}"; do
  mean=$(echo "scale=3; ${TOTAL[$tool]} / $ROUNDS" | bc)
  printf '%-7s mean %6.2f s  %6.0f MiB/s\n' "$tool" "$mean" "$(echo "$BYTES / 1048576 / $mean" | bc -l)"
done
echo "keywrap / wc -l: $(echo "scale=2; ${TOTAL[keywrap]} / ${TOTAL[wc]}" | bc)"
echo "reads reported: $(($(wc -l < "$WORK/report.csv") - 1))"
if [ -n "${KEYWRAP_BASELINE:-}" ]; then
  echo "keywrap / baseline: $(echo "scale=3; ${TOTAL[keywrap]} / ${TOTAL[baseline]}" | bc)"
  cmp -s "$WORK/report.csv" "$WORK/baseline.csv" && echo "reports identical" || echo "reports DIFFER"
fi
/usr/bin/time -f 'keywrap peak RSS: %M KiB' taskset -c 0 "$KEYWRAP" audit report --log "$LOG" --format csv > /dev/null
