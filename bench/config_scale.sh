#!/usr/bin/env bash
# Large inputs stay linear: `keywrap exec --dry-run -- true` with a keywrap.toml of 200,000
# [env] entries (every tenth a table with max_age, so the lifecycle options are read too),
# and with an env file of 200,000 lines (half vault:// references, half plain settings),
# each next to the same with a tenth as many, interleaved in one run. Loading, checking
# every reference and name, placing each in its line and column, layering the env file and
# the plan must grow linearly: each ratio should be about 10.
# Target (issue 12): under 1 s for 200,000 [env] entries (it took 1,136 s when every
# position lookup rescanned the file).
#
# Usage: [ROUNDS=5] bench/config_scale.sh [ENTRIES]   (no Vault needed: --dry-run reads none)
set -euo pipefail

entries=${1:-200000}
small=$((entries / 10))
rounds=${ROUNDS:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
keywrap="$root/target/release/keywrap"

generate() {
  python3 - "$@" <<'PY'
import os, sys
kind, count, dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(dir, exist_ok=True)
if kind == "toml":
    with open(os.path.join(dir, "keywrap.toml"), "w") as out:
        out.write("[policy]\nmax_age = \"90d\"\n\n[env]\n")
        for i in range(count):
            reference = f"secret/app{i % 500}#field{i}"
            if i % 10 == 0:
                out.write(f'VAR_{i} = {{ ref = "{reference}", max_age = "30d" }}\n')
            else:
                out.write(f'VAR_{i} = "{reference}"\n')
else:
    with open(os.path.join(dir, "big.env"), "w") as out:
        for i in range(count):
            if i % 2 == 0:
                out.write(f"REF_{i}=vault://secret/app{i % 500}#field{i}\n")
            else:
                out.write(f"PLAIN_{i}=value-{i}-${{HOME}}\n")
PY
}

generate toml "$entries" "$work/toml-big"
generate toml "$small" "$work/toml-small"
generate env "$entries" "$work/env-big"
generate env "$small" "$work/env-small"

# One timed run: prints seconds; checks the plan lists every reference.
run() {
  local dir=$1 references=$2
  shift 2
  python3 - "$dir" "$references" "$keywrap" "$@" <<'PY'
import subprocess, sys, time
cwd, references, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
start = time.perf_counter()
out = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, check=True).stdout
elapsed = time.perf_counter() - start
rows = sum(1 for line in out.splitlines() if line.startswith((b"VAR_", b"REF_")))
assert rows == references, (rows, references)
print(f"{elapsed:.4f}")
PY
}

declare -A times
for _ in $(seq "$rounds"); do
  for size in small big; do
    count=$([ "$size" = big ] && echo "$entries" || echo "$small")
    times[toml-$size]+="$(run "$work/toml-$size" "$count" exec --dry-run -- true) "
    times[env-$size]+="$(run "$work/env-$size" $((count / 2)) exec --dry-run --env-file big.env -- true) "
  done
done

median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "keywrap exec --dry-run, median of $rounds interleaved rounds (release build):"
for kind in toml env; do
  little=$(median "${times[$kind-small]}")
  big=$(median "${times[$kind-big]}")
  label=$([ "$kind" = toml ] && echo "keywrap.toml [env] entries" || echo "env-file lines")
  printf '  %-28s %7d: %.3f s   %7d: %.3f s   ratio %.1f (linear: 10)\n' "$label" "$small" "$little" "$entries" "$big" \
    "$(awk -v b="$big" -v s="$little" 'BEGIN { print b / s }')"
  if [ "$kind" = toml ]; then toml_big=$big; fi
done
awk -v b="$toml_big" 'BEGIN { exit !(b < 1.0) }' && echo "  target met: $entries [env] entries under 1 s" || echo "  TARGET MISSED: $entries [env] entries took ${toml_big} s (target 1 s)"
