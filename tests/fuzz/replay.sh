#!/usr/bin/env bash
# ctest fuzz_trace_replay: writes the seed corpus (make_seeds) and reads every
# seed and every file of tests/fuzz/regressions/ through the fuzz target's
# entry point (fuzz_trace_replay), each as it is and with its CRCs made right
# (so damage reaches the decoders): no crash, no sanitizer report.
#   replay.sh MAKE_SEEDS REPLAY SEED_DIR REGRESSIONS_DIR
set -euo pipefail
make_seeds=$1 replay=$2 seeds=$3 regressions=$4
rm -rf "$seeds" && mkdir -p "$seeds"
"$make_seeds" "$seeds"
shopt -s nullglob
inputs=("$seeds"/*.msb "$regressions"/crash-* "$regressions"/*.msb)
# Each seed cut short and with a byte changed, too.
i=0
for f in "$seeds"/*.msb; do
  size=$(stat -c %s "$f")
  head -c $((size / 2)) "$f" >"$seeds/cut$i"
  cp "$f" "$seeds/flip$i"
  printf '\x5a' | dd of="$seeds/flip$i" bs=1 seek=$((size / 3)) conv=notrunc status=none
  inputs+=("$seeds/cut$i" "$seeds/flip$i")
  i=$((i + 1))
done
"$replay" "${inputs[@]}"
