#!/usr/bin/env bash
# The browser test (ctest: browser_dashboard).
#   run.sh PAGE_PROGRAM SOURCE_DIR WORK_DIR [QUICKSTART]
# Installs playwright-core from SOURCE_DIR's lock file into WORK_DIR
# (install.sh), runs PAGE_PROGRAM in each of its modes to write dashboards,
# and checks each in headless chromium with dashboard.mjs. Screenshots land in
# WORK_DIR.
# With MEMSCOPE_CLI and CAPTURE_PROG set, also the dashboard `memscope run
# --stacks 8 --format html` writes for CAPTURE_PROG, and the one `memscope
# report` rebuilds from its streamed trace cut short.
# Exit 77 (skipped) without chromium or node, unless MEMSCOPE_REQUIRE_BROWSER=1.
set -euo pipefail
prog=$1 src=$2 work=$3 quickstart=${4:-}
chromium=${CHROMIUM:-/usr/bin/chromium}

skip() {
  if [ "${MEMSCOPE_REQUIRE_BROWSER:-0}" = 1 ]; then
    echo "browser test: $1 (MEMSCOPE_REQUIRE_BROWSER=1, so this fails)" >&2
    exit 1
  fi
  echo "browser test skipped: $1"
  exit 77
}
[ -x "$chromium" ] || skip "no chromium at $chromium (as root: apt-get install chromium)"
command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || skip "npm is not installed (apt-get install npm)"

bash "$src/install.sh" "$work"
cp "$src/dashboard.mjs" "$src/chromium.mjs" "$work/"

# Each run of page.c's, then the page `make demo` writes (QUICKSTART: every
# panel has data, the figures are its JSON report's, nothing fails).
status=0
for mode in full sampled zero empty; do
  echo "== $mode"
  "$prog" "$mode" "$work/$mode.html" "$work/$mode.json"
  CHROMIUM=$chromium node "$work/dashboard.mjs" "$work/$mode.html" "$work/$mode.json" "$work" || status=1
done
if [ -n "$quickstart" ]; then
  echo "== demo"
  rm -rf "$work/demo" && mkdir -p "$work/demo"
  (cd "$work/demo" && "$quickstart" >/dev/null)
  cat >"$work/demo.json" <<JSON
{"name": "demo", "report_json": "$work/demo/memscope-report.json", "threads": 2,
 "hotspot_stacks": true, "names": ["data", "origin", "node", "entry"],
 "panels": ["memory", "system", "hotspots", "leaks", "active", "threads", "sizes", "flame"]}
JSON
  CHROMIUM=$chromium node "$work/dashboard.mjs" "$work/demo/memscope-report.html" "$work/demo.json" \
    "$work" || status=1
fi
if [ -n "${MEMSCOPE_CLI:-}" ] && [ -x "${CAPTURE_PROG:-}" ]; then
  echo "== capture"
  "$MEMSCOPE_CLI" run -q --stacks 8 -o "$work/capture.json" -- "$CAPTURE_PROG"
  "$MEMSCOPE_CLI" run -q --stacks 8 --format html -o "$work/capture.html" -- "$CAPTURE_PROG"
  cat >"$work/capture-expect.json" <<JSON
{"name": "capture", "report_json": "$work/capture.json", "threads": 1,
 "hotspot_stacks": true, "names": ["leak_here"],
 "panels": ["memory", "hotspots", "leaks", "active", "threads", "sizes", "flame"]}
JSON
  CHROMIUM=$chromium node "$work/dashboard.mjs" "$work/capture.html" "$work/capture-expect.json" \
    "$work" || status=1
  # A streamed trace cut short (its trailer gone): the dashboard rebuilt from it says so.
  echo "== truncated trace"
  "$MEMSCOPE_CLI" run -q --stacks 8 --format bin -o "$work/whole.msb" -- "$CAPTURE_PROG"
  head -c $(($(stat -c %s "$work/whole.msb") - 10)) "$work/whole.msb" >"$work/cut.msb"
  "$MEMSCOPE_CLI" report "$work/cut.msb" --json "$work/cut.json" --html "$work/cut.html" \
    >/dev/null 2>&1
  cat >"$work/cut-expect.json" <<JSON
{"name": "truncated", "report_json": "$work/cut.json", "threads": 1,
 "names": ["leak_here", "TRUNCATED trace"],
 "panels": ["memory", "hotspots", "leaks", "active", "threads", "sizes", "flame"]}
JSON
  CHROMIUM=$chromium node "$work/dashboard.mjs" "$work/cut.html" "$work/cut-expect.json" \
    "$work" || status=1
fi
echo "screenshots: $work/dashboard-1280x800.png (and -full, -dark, -phone, -sampled-, -zero-, -empty-)"
exit $status
