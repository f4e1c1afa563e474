#!/usr/bin/env bash
# Run make targets one after another and say how long each took (`make up` uses it).
# The table goes to the terminal and to var/log/up-phases.tsv (read by `make bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/log
out=var/log/up-phases.tsv
: >"$out"
seconds() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
total_start=$(date +%s%3N)
for phase in "$@"; do
  start=$(date +%s%3N)
  make --no-print-directory "$phase"
  printf '%s\t%s\n' "$phase" "$(seconds $(($(date +%s%3N) - start)))" >>"$out"
done
printf 'total\t%s\n' "$(seconds $(($(date +%s%3N) - total_start)))" >>"$out"
echo
echo "Where the time went (seconds):"
while IFS=$'\t' read -r phase took; do printf '  %-10s %8s\n' "$phase" "$took"; done <"$out"
