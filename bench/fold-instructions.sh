#!/usr/bin/env bash
# The fold's instructions per captured record, counted by callgrind (valgrind):
# bench_fold --inline over a small live set, so the figure is the code's own,
# not the machine's (the same on a busy machine as on an idle one). Prints
#   fold_instructions_per_record: N   (the fold's loop and what it applies)
#   live_apply_share: P%   (of the records, those the fold's inline path left
#                           to ms__live_apply)
#   fold_instructions_per_record_threads: N   (the same for `memscope run`'s
#       preload library on build/bench/wl_threads 500000: two threads, a live
#       set that leaves the L1 cache; records = allocations + frees reported)
# Usage: bench/fold-instructions.sh [BUILD_DIR]. Needs valgrind (Debian: valgrind).
set -euo pipefail
build=${1:-build}
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_annotate >/dev/null 2>&1; then
  echo "# fold-instructions: valgrind is not installed (apt-get install valgrind); skipped"
  exit 0
fi
pairs=200000
out=$(mktemp) log=$(mktemp)
trap 'rm -f "$out" "$log"' EXIT
if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$build/bench/bench_fold" --inline --live 256 --pairs "$pairs" --reps 1 >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
# Inclusive counts by function; records = 2 per pair (the first round's frees
# of empty slots are not pushed: fewer than 256 of 400 000).
callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v n=$((2 * pairs)) '
  function count(s) { gsub(",", "", s); return s + 0 }
  /:fold_locked_at / && !fold { fold = count($1) }
  END {
    if (!fold) { print "# fold-instructions: no fold in the profile" > "/dev/stderr"; exit 1 }
    printf "# callgrind, bench_fold --inline --live 256 --pairs %d: instructions per record\n", n / 2
    printf "fold_instructions_per_record: %.0f\n", fold / n
  }'
# Calls of ms__live_apply, from callgrind's call counts: its id is named once
# ("fn=(ID) ms__live_apply"); each call site says "cfn=(ID)", then "calls=N".
calls=$(awk '
  match($0, /^c?fn=\([0-9]+\) ms__live_apply$/) { split($0, a, /[()]/); id = a[2] }
  id != "" && $0 ~ "^cfn=\\(" id "\\)" { want = 1; next }
  want && /^calls=/ { split($1, a, "="); total += a[2] }
  { want = 0 }
  END { print total + 0 }' "$out")
awk -v c="$calls" -v n=$((2 * pairs)) 'BEGIN { printf "live_apply_share: %.2f%%\n", 100 * c / n }'

# The threads workload under the preload library, its fold thread included.
preload=$build/libmemscope_preload.so
if [ -f "$preload" ] && [ -x "$build/bench/wl_threads" ]; then
  report=$(mktemp --suffix=.json)
  trap 'rm -f "$out" "$log" "$report"' EXIT
  if ! LD_PRELOAD="$preload" MEMSCOPE_OUTPUT="$report" MEMSCOPE_RETAINED_BYTES=0 \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$build/bench/wl_threads" 500000 \
    >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  # The first "stats" object: its two counts, one per line.
  records=$(awk -F'[:,]' '/"total_allocations"/ && !a { a = $2 + 0 }
    /"total_deallocations"/ && !d { d = $2 + 0 } END { print a + d }' "$report")
  callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v n="${records:-0}" '
    function count(s) { gsub(",", "", s); return s + 0 }
    /:fold_locked_at / && !fold { fold = count($1) }
    END {
      if (!fold || !n) { print "# fold-instructions: no fold in the threads profile" > "/dev/stderr"; exit 1 }
      printf "fold_instructions_per_record_threads: %.0f\n", fold / n
    }'
fi
