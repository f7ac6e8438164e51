#!/usr/bin/env bash
# The size of a whole run's trace: `memscope run --format bin` (streamed,
# zstd level 1, and without zstd) against heaptrack's trace of the same
# workload (bench/workloads/churn.c: 7 M malloc/free pairs), where heaptrack
# is installed. Prints "name: value" lines; bytes per event divide each file
# by the events memscope's trace holds (the same program, the same calls).
#
# Usage: bench/trace-size.sh [BUILD_DIR]   (default: build)
#
# What each file holds differs: memscope's has every event's address, size,
# thread and time (a replay rebuilds the live state exactly); heaptrack's
# names an allocation by an index into its table of (size, stack) pairs and
# a free by the same index, with a timestamp every 10 ms, no addresses.
set -eu

build=$(cd "${1:-build}" && pwd)
memscope=$build/memscope
churn=$build/bench/wl_churn
for f in "$memscope" "$churn"; do
  if [ ! -x "$f" ]; then
    echo "trace-size.sh: $f not found; build first (cmake --build $build)" >&2
    exit 1
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

size() { stat -c %s "$1"; }

"$memscope" run -q --format bin -o "$work/churn.msb" -- "$churn" >/dev/null
MEMSCOPE_TRACE_ZSTD=0 "$memscope" run -q --format bin -o "$work/plain.msb" -- "$churn" >/dev/null
events=$("$memscope" report "$work/churn.msb" | sed -n 's/^  \([0-9]*\) events.*/\1/p')
if [ -z "$events" ] || [ "$events" -eq 0 ]; then
  echo "trace-size.sh: memscope report could not count the trace's events" >&2
  exit 1
fi
echo "trace_churn_events: $events"
awk -v b="$(size "$work/churn.msb")" -v n="$events" \
  'BEGIN { printf "trace_churn_memscope_bytes: %d\ntrace_churn_memscope_bytes_per_event: %.2f\n", b, b / n }'
awk -v b="$(size "$work/plain.msb")" -v n="$events" \
  'BEGIN { printf "trace_churn_memscope_plain_bytes: %d\ntrace_churn_memscope_plain_bytes_per_event: %.2f\n", b, b / n }'

if command -v heaptrack >/dev/null 2>&1; then
  (cd "$work" && heaptrack -o "$work/ht" "$churn" >/dev/null 2>&1) || true
  ht=$(ls "$work"/ht.* 2>/dev/null | head -n1)
  if [ -n "$ht" ]; then
    awk -v b="$(size "$ht")" -v n="$events" -v f="${ht##*/}" \
      'BEGIN { printf "trace_churn_heaptrack_bytes: %d\ntrace_churn_heaptrack_bytes_per_event: %.2f\n# heaptrack wrote %s\n", b, b / n, f }'
  else
    echo "# heaptrack wrote no trace"
  fi
else
  echo "# heaptrack is not installed (apt-get install heaptrack): no comparison"
fi
