#!/usr/bin/env bash
# Are the stacks of the default walk (the chain of frame pointers where the
# code keeps one, checked against the call-frame information) the ones the
# unwinder alone gives? Runs PROG twice under `memscope run --stacks 20`, by
# default and with MEMSCOPE_UNWIND=unwinder, with address-space randomisation
# off (setarch -R) so that unnamed frames match, and compares the reports'
# leak groups by their frames' names (offsets dropped). Prints
#   stack_groups{PROG}: N   stack_groups_differing{PROG}: D
# and the first few groups that only the default walk gives. D counts groups
# either side lacks: a program that frees differently from run to run (a
# garbage collector's) differs by those blocks both ways.
# Usage: bench/stack-groups.sh BUILD_DIR PROG [ARGS...]   Needs python3, setarch.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bench/stack-groups.sh BUILD_DIR PROG [ARGS...]" >&2
  exit 2
fi
build=$1
shift
for tool in python3 setarch; do
  command -v "$tool" >/dev/null || { echo "stack-groups.sh: $tool is not installed" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MEMSCOPE_PRELOAD=$build/libmemscope_preload.so
setarch -R "$build/memscope" run -q --stacks 20 -o "$tmp/auto.json" -- "$@" >/dev/null
MEMSCOPE_UNWIND=unwinder setarch -R "$build/memscope" run -q --stacks 20 -o "$tmp/unw.json" \
  -- "$@" >/dev/null
python3 - "$tmp/auto.json" "$tmp/unw.json" "$(basename "$1")" <<'PY'
import json, re, sys
def groups(path):
    g = {}
    for leak in json.load(open(path))["leaks"]:
        key = tuple(re.sub(r"\+0x[0-9a-f]+", "", f) for f in leak.get("stack", []))
        g[key] = g.get(key, 0) + leak["count"]
    return g
auto, unw = groups(sys.argv[1]), groups(sys.argv[2])
only = [k for k in auto if k not in unw]
print(f"stack_groups{{{sys.argv[3]}}}: {len(auto)}")
print(f"stack_groups_differing{{{sys.argv[3]}}}: {len(only) + len([k for k in unw if k not in auto])}")
for k in only[:3]:
    print("# only by default:", " <- ".join(k[:8]))
PY
