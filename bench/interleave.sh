#!/usr/bin/env bash
# Wall times of commands run in turn, RUNS rounds, so that a shared machine's
# slow minutes fall on all of them alike: prints each command's median (and
# its times) and its ratio to the first command's median.
# Usage: bench/interleave.sh RUNS 'LABEL=COMMAND' ...
#   e.g. bench/interleave.sh 7 'native=build/bench/wl_trees' \
#        'sampled=build/memscope run -q --sample-rate 0.01 -o /tmp/t.json -- build/bench/wl_trees'
# A command is run by bash (it may set variables: 'X=1 prog'); its output is dropped.
# With INTERLEAVE_CPU=1 the figures are CPU time (user + system, the command's
# processes and threads together) instead of wall time: on a machine whose
# other guests steal time, CPU time moves less, though it counts a second
# thread's work that wall time may overlap.
set -euo pipefail
if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: bench/interleave.sh RUNS 'LABEL=COMMAND' ..." >&2
  exit 2
fi
runs=$1
shift
labels=() cmds=()
for arg in "$@"; do
  if [[ $arg != *=* ]]; then
    echo "interleave.sh: '$arg' is not LABEL=COMMAND" >&2
    exit 2
  fi
  labels+=("${arg%%=*}")
  cmds+=("${arg#*=}")
done
declare -a times
for ((r = 0; r < runs; r++)); do
  for i in "${!cmds[@]}"; do
    if [ "${INTERLEAVE_CPU:-0}" = 1 ]; then
      # bash's `times`: its children's user and system time, as 0m0.123s.
      if ! cpu=$(bash -c "{ ${cmds[$i]}; } >/dev/null 2>&1 || exit 1; times" | tail -1); then
        echo "interleave.sh: '${labels[$i]}' failed: ${cmds[$i]}" >&2
        exit 1
      fi
      times[$i]+="$(awk '{ t = 0
        for (k = 1; k <= 2; k++) { split($k, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%d", t * 1000 }' <<<"$cpu") "
      continue
    fi
    start=$(date +%s%N)
    if ! bash -c "${cmds[$i]}" >/dev/null 2>&1; then
      echo "interleave.sh: '${labels[$i]}' failed: ${cmds[$i]}" >&2
      exit 1
    fi
    end=$(date +%s%N)
    times[$i]+="$(((end - start) / 1000000)) "
  done
done
first=0
for i in "${!cmds[@]}"; do
  median=$(tr ' ' '\n' <<<"${times[$i]}" | grep . | sort -n |
    awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  [ "$i" -eq 0 ] && first=$median
  awk -v l="${labels[$i]}" -v m="$median" -v f="$first" -v t="${times[$i]}" \
    'BEGIN { printf "%-16s %6d ms  %5.2fx   (%s)\n", l, m, (f > 0 ? m / f : 0), t }'
done
