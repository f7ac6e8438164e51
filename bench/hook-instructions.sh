#!/usr/bin/env bash
# What the malloc hooks add to each malloc and free, counted by callgrind
# (valgrind): the instructions of wl_churn (1 M malloc/free pairs) under the
# preload library, minus those of the same run without it, per call. A figure
# the machine's load does not move. Prints, per configuration,
#   hook_instructions_per_call{config}: N
# for: capture off (MEMSCOPE_CAPTURE=0: forwarding only), 1% sampling,
# full capture without stacks (what `memscope run` records; the fold's
# instructions, on its own thread, are counted too), and full capture with
# 20-frame stacks (wl_churn's mallocs come straight from main: the walk,
# hash and interning of main's stack down to _start).
# Usage: bench/hook-instructions.sh [BUILD_DIR [PRELOAD]]. Needs valgrind.
set -euo pipefail
build=${1:-build}
preload=${2:-$build/libmemscope_preload.so}
if ! command -v valgrind >/dev/null 2>&1; then
  echo "# hook-instructions: valgrind is not installed (apt-get install valgrind); skipped"
  exit 0
fi
pairs=1000000
calls=$((2 * pairs))
prog=$build/bench/wl_churn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# instructions ENV...: the instructions callgrind counted for wl_churn, with ENV.
instructions() {
  if ! env "$@" valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
      "$prog" "$pairs" >/dev/null 2>"$tmp/log"; then
    cat "$tmp/log" >&2
    exit 1
  fi
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/log"
}

native=$(instructions)
echo "# callgrind, wl_churn $pairs ($calls calls): instructions added per malloc or free"
for cfg in "off|MEMSCOPE_CAPTURE=0" "sample1%|MEMSCOPE_SAMPLE_RATE=0.01" "full|" \
  "stacks20|MEMSCOPE_STACKS=20"; do
  name=${cfg%%|*}
  read -r -a vars <<<"${cfg#*|}"
  n=$(instructions LD_PRELOAD="$preload" MEMSCOPE_RETAINED_BYTES=0 \
    MEMSCOPE_OUTPUT="$tmp/report.json" "${vars[@]}")
  awk -v n="$n" -v base="$native" -v c="$calls" -v name="$name" \
    'BEGIN { printf "hook_instructions_per_call{%s}: %.1f\n", name, (n - base) / c }'
done
