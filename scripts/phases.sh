#!/usr/bin/env bash
# Run make targets one after another and say how long each took (`make up` uses it).
# The table goes to the terminal and to var/log/up-phases.tsv (read by `make bench`). The first run in a
# checkout (no .venv yet: everything is installed) is also kept as var/log/up-phases-first.tsv, so that the
# benchmark can report a fresh clone's `make up` after later, quicker runs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/log
out=var/log/up-phases.tsv
first=0
[ -e .venv ] || first=1
pip_cache=used
if [ -n "${PIP_NO_CACHE_DIR:-}" ] || [ -z "$(ls -A "${XDG_CACHE_HOME:-$HOME/.cache}/pip" 2>/dev/null)" ]; then
  pip_cache="empty or off (every package downloaded)"
fi
: >"$out"
seconds() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
total_start=$(date +%s%3N)
for phase in "$@"; do
  start=$(date +%s%3N)
  make --no-print-directory "$phase"
  printf '%s\t%s\n' "$phase" "$(seconds $(($(date +%s%3N) - start)))" >>"$out"
done
printf 'total\t%s\n' "$(seconds $(($(date +%s%3N) - total_start)))" >>"$out"
if [ "$first" = 1 ]; then
  { printf '# %s, %s cores, pip cache %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$pip_cache"
    cat "$out"; } >var/log/up-phases-first.tsv
fi
echo
echo "Where the time went (seconds):"
while IFS=$'\t' read -r phase took; do printf '  %-10s %8s\n' "$phase" "$took"; done <"$out"
