#!/usr/bin/env bash
# Compares the cost of memscope's malloc capture (`memscope run`) with running
# natively and, where installed, with heaptrack and valgrind's massif, on the
# workloads of bench/workloads/ (built as BUILD_DIR/bench/wl_*).
#
# Usage: bench/compare-peers.sh [--quick] [BUILD_DIR]   (default BUILD_DIR: build)
#   --quick  run each configuration once instead of 3 times (a CI smoke run)
#
# Every configuration runs under bench_runner; the row shows the run with the
# median wall time and that run's peak RSS. Peak RSS is ru_maxrss from wait4():
# the largest single process of the tool's process tree (for heaptrack often
# its heaptrack_interpret helper), not a sum. For memscope on the threads
# workload, "leak check" reads the JSON report: "exact" when the leaks list
# has a leak_some group of 1000 blocks and 64000 bytes, "est. N×B" for a
# sampled run (its counts are estimates), "WRONG N×B" otherwise. Exits 1 after
# the table if a run failed or a leak check is WRONG.
# shellcheck disable=SC2059 # $fmt is the table's one format, used on purpose
set -eu

usage() { echo "usage: bench/compare-peers.sh [--quick] [BUILD_DIR]"; }

build=build
runs=3
for arg in "$@"; do
  case $arg in
    --quick) runs=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) build=$arg ;;
  esac
done

workloads=(churn trees threads light)
runner=$build/bench/bench_runner
memscope=$build/memscope
for f in "$runner" "$memscope" "${workloads[@]/#/$build/bench/wl_}"; do
  if [ ! -x "$f" ]; then
    echo "compare-peers.sh: $f not found; build first (cmake --build $build)" >&2
    exit 1
  fi
done

# massif runs 10-50x slower than native. If its first run on churn (the
# allocation-heaviest workload) takes longer than this, it is not repeated and
# massif is kept to light and trees.
massif_budget_s=60

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare-peers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

have_heaptrack=0; command -v heaptrack >/dev/null 2>&1 && have_heaptrack=1
have_massif=0; command -v valgrind >/dev/null 2>&1 && have_massif=1

# leak_check FILE: the leak-check cell for one memscope report of wl_threads.
leak_check() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
try:
    with open(sys.argv[1]) as f:
        d = json.load(f)
except (OSError, ValueError):
    print("WRONG unreadable"); sys.exit()
g = [l for l in d.get("leaks") or [] if l.get("function") == "leak_some"]
if any(l.get("count") == 1000 and l.get("bytes") == 64000 for l in g):
    print("exact")
else:
    desc = "+".join("%d×%d" % (l.get("count", 0), l.get("bytes", 0)) for l in g) or "none"
    est = (d.get("sampling") or {}).get("is_estimate")
    print(("est. " if est else "WRONG ") + desc)
' "$1"
  elif command -v jq >/dev/null 2>&1; then
    jq -r '[.leaks[]? | select(.function == "leak_some")] as $g
      | if any($g[]; .count == 1000 and .bytes == 64000) then "exact"
        else (if .sampling.is_estimate then "est. " else "WRONG " end)
          + (if ($g | length) == 0 then "none"
             else ($g | map("\(.count)×\(.bytes)") | join("+")) end) end' "$1" 2>/dev/null \
      || echo "WRONG unreadable"
  else
    echo "n/a (no python3 or jq)"
  fi
}

# measure N BUDGET OUT_PREFIX CMD...: run CMD N times under bench_runner (once
# if the first run takes more than BUDGET seconds, 0 = no limit). OUT_PREFIX.I
# is where run I may write its output file (@OUT@ in CMD is replaced by it).
# Sets m_wall, m_rss_kb, m_status (the median run's, or the first failed
# run's status), m_runs and m_outs (the output paths).
measure() {
  local n=$1 budget=$2 prefix=$3
  shift 3
  local i line wall rss status out results=() cmd
  m_status=0 m_runs=0 m_outs=()
  for ((i = 1; i <= n; i++)); do
    out=$prefix.$i
    cmd=("${@//@OUT@/$out}")
    line=$("$runner" "${cmd[@]}" 2>"$tmp/stderr.log") || true # this run's stderr only
    if [[ $line =~ wall_s=([0-9.]+)\ maxrss_kb=([0-9]+)\ status=([0-9]+) ]]; then
      wall=${BASH_REMATCH[1]} rss=${BASH_REMATCH[2]} status=${BASH_REMATCH[3]}
    else
      wall=0 rss=0 status=127
    fi
    m_runs=$i
    m_outs+=("$out")
    if [ "$status" -ne 0 ]; then
      m_status=$status
      return
    fi
    results+=("$wall $rss")
    if [ "$budget" != 0 ] && awk -v w="$wall" -v b="$budget" 'BEGIN { exit !(w > b) }'; then
      break
    fi
  done
  line=$(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(((m_runs + 1) / 2))p")
  m_wall=${line% *} m_rss_kb=${line#* }
}

failed=0
fmt='%-8s  %-18s  %8s  %8s  %8s  %9s  %s\n'
native_wall=0 native_rss=0

# row WORKLOAD TOOL LEAK: print the row of the last measure().
row() {
  local note=""
  if [ "$m_status" -ne 0 ]; then
    printf "$fmt" "$1" "$2" "FAILED" "" "" "" "exit status $m_status (run $m_runs)"
    echo "# $1 / $2 failed; the end of its stderr:" >&2
    tail -n 5 "$tmp/stderr.log" | sed 's/^/#   /' >&2
    failed=1
    return
  fi
  [ "$m_runs" -lt "$runs" ] && note=" ($m_runs run)"
  awk -v w="$m_wall" -v r="$m_rss_kb" -v nw="$native_wall" -v nr="$native_rss" \
      -v wl="$1" -v tool="$2" -v leak="$3$note" -v fmt="$fmt" 'BEGIN {
    printf fmt, wl, tool, sprintf("%.3f", w), sprintf("%.2fx", nw > 0 ? w / nw : 0),
           sprintf("%.1f", r / 1024), sprintf("%.2fx", nr > 0 ? r / nr : 0), leak }'
  case $3 in WRONG*) failed=1 ;; esac
}

echo "# memscope capture vs peers ($(date -u +%Y-%m-%dT%H:%M:%SZ)), build: $build," \
     "$runs run(s) per configuration, median wall time"
echo "# heaptrack: $( ((have_heaptrack)) && heaptrack --version 2>/dev/null | head -n1 || echo 'not installed')"
echo "# massif:    $( ((have_massif)) && valgrind --version 2>/dev/null | head -n1 || echo 'not installed')"
printf "$fmt" workload tool "wall s" ratio "RSS MiB" "RSS ratio" "leak check"

massif_heavy=1 # massif on churn and threads
for w in "${workloads[@]}"; do
  prog=$build/bench/wl_$w
  native_wall=0 native_rss=0
  measure "$runs" 0 "$tmp/$w.native" "$prog"
  [ "$m_status" -eq 0 ] && native_wall=$m_wall native_rss=$m_rss_kb
  row "$w" native "-"

  for cfg in "memscope|" "memscope-stacks20|--stacks 20" "memscope-sample1%|--sample-rate 0.01"; do
    name=${cfg%%|*}
    read -r -a opts <<<"${cfg#*|}"
    measure "$runs" 0 "$tmp/$w.$name" "$memscope" run -q -o @OUT@.json "${opts[@]}" -- "$prog"
    leak="-"
    if [ "$w" = threads ] && [ "$m_status" -eq 0 ]; then
      leak=""
      for out in "${m_outs[@]}"; do # every run's report must be right
        leak=$(leak_check "$out.json")
        [ "$leak" = exact ] || break
      done
    fi
    rm -f "$tmp/$w.$name".*
    row "$w" "$name" "$leak"
  done

  if ((have_heaptrack)); then
    measure "$runs" 0 "$tmp/$w.heaptrack" heaptrack -o @OUT@ "$prog"
    rm -f "$tmp/$w.heaptrack".*
    row "$w" heaptrack "-"
  fi

  if ((have_massif)); then
    if ((!massif_heavy)) && { [ "$w" = churn ] || [ "$w" = threads ]; }; then
      printf "$fmt" "$w" massif "skipped" "" "" "" "(too slow on churn)"
    else
      budget=0
      [ "$w" = churn ] && budget=$massif_budget_s
      measure "$runs" "$budget" "$tmp/$w.massif" \
        valgrind --tool=massif --massif-out-file=@OUT@ "$prog"
      rm -f "$tmp/$w.massif".*
      row "$w" massif "-"
      if [ "$w" = churn ] && [ "$m_status" -eq 0 ] &&
         awk -v w="$m_wall" -v b="$massif_budget_s" 'BEGIN { exit !(w > b) }'; then
        massif_heavy=0
      fi
    fi
  fi
done
if ((have_massif)); then
  if ((massif_heavy)); then
    echo "# massif ran on every workload (its churn run took at most ${massif_budget_s} s)"
  else
    echo "# massif kept to light and trees: its churn run took more than ${massif_budget_s} s"
  fi
fi

# Start-up: what `memscope run` adds to a program that does nothing. Timed
# here with microsecond resolution (bench_runner prints milliseconds) from
# $EPOCHREALTIME (bash 5; else date, whose own cost then cancels out too).
median_ms() { # median_ms CMD...: the median of 10 runs, in ms
  local i s e
  for ((i = 0; i < 10; i++)); do
    if [ -n "${EPOCHREALTIME:-}" ]; then
      s=${EPOCHREALTIME/[.,]/}
      "$@" >/dev/null 2>>"$tmp/stderr.log" || true
      e=${EPOCHREALTIME/[.,]/}
    else
      s=$(date +%s%N)
      "$@" >/dev/null 2>>"$tmp/stderr.log" || true
      e=$(date +%s%N)
      s=$((s / 1000)) e=$((e / 1000))
    fi
    echo $((e - s))
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (v[5] + v[6]) / 2 / 1000 }'
}
true_ms=$(median_ms /bin/true)
memscope_ms=$(median_ms "$memscope" run -q -o "$tmp/startup.json" -- /bin/true)
awk -v a="$memscope_ms" -v b="$true_ms" 'BEGIN {
  printf "capture_startup_ms: %.2f  (memscope run -q -o FILE -- /bin/true %.2f ms, /bin/true %.2f ms; medians of 10)\n",
         a - b, a, b }'

if ((failed)); then
  echo "compare-peers.sh: a run failed or a leak check was WRONG (see above)" >&2
  exit 1
fi
