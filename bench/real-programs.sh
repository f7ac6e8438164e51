#!/usr/bin/env bash
# memscope run on programs nobody here wrote, the way a user runs it: each
# program natively, under full capture, with 20-frame stacks and with 1%
# sampling, in interleaved rounds (bench/interleave.sh: a shared machine's slow
# minutes fall on all of them alike), with the median wall time and its ratio
# to native. Before timing, each program's output under full capture is
# compared with its native output (it must be the same), and the report's
# allocation count is printed.
#   real_program_native_ms{PROG}: N
#   real_program_ratio{PROG,CONFIG}: R
#   real_program_allocations{PROG}: N
# Programs that are not installed are skipped (said so on a "#" line).
# Usage: bench/real-programs.sh [BUILD_DIR [ROUNDS]]   (default: build, 5)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
rounds=${2:-5}
memscope=$build/memscope
if [ ! -x "$memscope" ]; then
  echo "real-programs.sh: $memscope not found (build the memscope_cli target)" >&2
  exit 1
fi
repo=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The inputs: a million lines to sort by two keys, a dict and a hash to build.
seq 1 1000000 | awk '{ printf "%d k%d %d\n", ($1 * 7919) % 100003, ($1 * 104729) % 1000003, $1 }' \
  >"$tmp/lines.txt"
cat >"$tmp/dict.py" <<'EOF'
d = {}
for i in range(300000):
    d["key%d" % i] = [i, str(i) * 3, {"a": i}]
print(len(sorted(d, key=lambda k: d[k][1])))
EOF
cat >"$tmp/hash.pl" <<'EOF'
my %h;
$h{"k$_"} = "x" x ($_ % 200) for 1 .. 400000;
print scalar(keys %h), "\n";
EOF

# name|program|command (run by bash; its output goes to stdout)
programs=(
  "python3|/usr/bin/python3|/usr/bin/python3 $tmp/dict.py"
  "perl|/usr/bin/perl|/usr/bin/perl $tmp/hash.pl"
  "apt-cache|/usr/bin/apt-cache|/usr/bin/apt-cache dump"
  "git|/usr/bin/git|/usr/bin/git -C $repo log --stat -n 2000"
  "sort|/usr/bin/sort|/usr/bin/sort -k2,2 -k1,1n $tmp/lines.txt"
)

echo "# memscope run on real programs ($(date -u +%Y-%m-%dT%H:%M:%SZ)), build: $build," \
     "$rounds interleaved rounds, median wall time"
for p in "${programs[@]}"; do
  IFS='|' read -r name prog cmd <<<"$p"
  if [ ! -x "$prog" ]; then
    echo "# $name: $prog is not installed; skipped"
    continue
  fi
  # The same output, natively and under capture (and a report with allocations).
  bash -c "$cmd" >"$tmp/native.out" 2>/dev/null
  "$memscope" run -q -o "$tmp/report.json" -- bash -c "exec $cmd" >"$tmp/capture.out" 2>/dev/null
  if ! cmp -s "$tmp/native.out" "$tmp/capture.out"; then
    echo "real-programs.sh: $name's output under memscope run differs from its native output" >&2
    exit 1
  fi
  allocs=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stats"]["total_allocations"])' \
    "$tmp/report.json" 2>/dev/null || echo unknown)
  echo "real_program_allocations{$name}: $allocs"
  out=$("$here/interleave.sh" "$rounds" \
    "native=$cmd" \
    "memscope=$memscope run -q -o $tmp/r.json -- bash -c \"exec $cmd\"" \
    "stacks20=$memscope run -q --stacks 20 -o $tmp/r.json -- bash -c \"exec $cmd\"" \
    "sample1%=$memscope run -q --sample-rate 0.01 -o $tmp/r.json -- bash -c \"exec $cmd\"")
  sed 's/^/# /' <<<"$out"
  awk -v n="$name" '$1 == "native" { printf "real_program_native_ms{%s}: %s\n", n, $2 }
    $1 != "native" { r = $4; sub(/x$/, "", r); printf "real_program_ratio{%s,%s}: %s\n", n, $1, r }' \
    <<<"$out"
done
