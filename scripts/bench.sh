#!/usr/bin/env bash
# Runs memscope's benchmarks from a build directory and prints their figures as
# "name: value" lines (units in the name), with "#" lines for people.
# Usage: scripts/bench.sh [BUILD_DIR]   (default: build; `make bench` passes $(BUILD))
# Ends with bench/compare-peers.sh's table (memscope run vs heaptrack and massif)
# and bench/real-programs.sh's (memscope run on python3, perl, apt-cache, git, sort).
set -euo pipefail

build=${1:-build}
benches=(bench_clock bench_track bench_snapshot bench_memory bench_monitor bench_fold bench_trace)

for b in "${benches[@]}"; do
  if [ ! -x "$build/bench/$b" ]; then
    echo "bench.sh: $build/bench/$b not found; build with MEMSCOPE_BUILD_BENCH=ON first" >&2
    echo "  (make build, or: cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release" \
         "&& cmake --build $build)" >&2
    exit 1
  fi
done

cpu=$(grep -m1 -E '^(model name|Model|Hardware|cpu model)[[:space:]]*:' /proc/cpuinfo 2>/dev/null \
      | cut -d: -f2- | sed 's/^[[:space:]]*//') || true
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null) || true
compiler=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null) || true
compiler_version=$("${compiler:-cc}" --version 2>/dev/null | head -n1) || true
mem_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo 2>/dev/null) || true

echo "# memscope benchmarks ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo "machine_nproc: $(nproc 2>/dev/null || echo unknown)"
echo "machine_cpu_model: ${cpu:-unknown}"
echo "machine_memory_mib: $(( ${mem_kib:-0} / 1024 ))"
echo "machine_kernel: $(uname -sr)"
echo "machine_loadavg_1min: $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo unknown)"
echo "build_type: ${build_type:-unknown}"
echo "compiler: ${compiler_version:-unknown}"
if [ "${build_type:-}" != "Release" ]; then
  echo "# WARNING: the build type is not Release; these figures do not describe a release build"
fi

failed=()
# step NAME COMMAND...: a "## NAME" section running COMMAND, with its time;
# a failure is noted and the others still run.
step() {
  local name=$1 start end rc=0
  shift
  echo
  echo "## $name"
  start=$(date +%s.%N)
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    failed+=("$name")
    echo "# $name FAILED (exit status $rc)"
  fi
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "# %s took %.1f s\n", n, e - s }'
}

total_start=$(date +%s.%N)
for b in "${benches[@]}"; do
  step "$b" "$build/bench/$b"
done

# The fold once more, by the recording thread itself over a live set that stays
# in its caches, and its instructions per record (callgrind: a count that other
# programs on a shared machine do not move).
step fold-inline "$build/bench/bench_fold" --inline --live 256
step fold-instructions "$(dirname "$0")/../bench/fold-instructions.sh" "$build"
# What the malloc hooks add to each call (callgrind), capture off, sampling,
# full capture and 20-frame stacks.
step hook-instructions "$(dirname "$0")/../bench/hook-instructions.sh" "$build"
# A whole run's trace (memscope run --format bin) against heaptrack's.
step trace-size "$(dirname "$0")/../bench/trace-size.sh" "$build"

# The dashboard of a 10-million-event run: its size, and its render time in
# headless chromium when chromium and Node.js are installed.
echo
echo "## dashboard"
here=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s.%N)
rc=0
"$build/bench/bench_html" "$build/bench/dashboard-10M.html" || rc=$?
if [ "$rc" -ne 0 ]; then
  failed+=("bench_html")
  echo "# bench_html FAILED (exit status $rc)"
elif [ -x "${CHROMIUM:-/usr/bin/chromium}" ] && command -v npm >/dev/null 2>&1; then
  work=$build/bench/browser
  if bash "$here/tests/browser/install.sh" "$work"; then
    cp "$here/bench/html_render.mjs" "$here/tests/browser/chromium.mjs" "$work/"
    node "$work/html_render.mjs" "$build/bench/dashboard-10M.html" 5 || failed+=("html_render")
  else
    failed+=("html_render")
  fi
else
  echo "# no chromium (apt-get install chromium) or npm: render time not measured"
fi
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "# dashboard took %.1f s\n", e - s }'

# memscope run against native, heaptrack and massif on bench/workloads/: a table.
step compare-peers "$(dirname "$0")/../bench/compare-peers.sh" "$build"
# memscope run on programs nobody here wrote (python3, perl, apt-cache, git, sort).
step real-programs "$(dirname "$0")/../bench/real-programs.sh" "$build"
total_end=$(date +%s.%N)
echo
awk -v s="$total_start" -v e="$total_end" 'BEGIN { printf "# all benchmarks took %.1f s\n", e - s }'

if [ ${#failed[@]} -ne 0 ]; then
  echo "bench.sh: failed: ${failed[*]}" >&2
  exit 1
fi
