#!/usr/bin/env bash
# The browser test (ctest: browser_dashboard).
#   run.sh PAGE_PROGRAM SOURCE_DIR WORK_DIR
# Installs playwright-core from SOURCE_DIR's lock file into WORK_DIR
# (install.sh), runs PAGE_PROGRAM to write a dashboard, and checks it in
# headless chromium with dashboard.mjs. Screenshots land in WORK_DIR.
# Exit 77 (skipped) without chromium or node, unless MEMSCOPE_REQUIRE_BROWSER=1.
set -euo pipefail
prog=$1 src=$2 work=$3
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
cp "$src/dashboard.mjs" "$work/"

"$prog" "$work/page.html" "$work/expect.json"
CHROMIUM=$chromium node "$work/dashboard.mjs" "$work/page.html" "$work/expect.json" "$work"
echo "screenshots: $work/dashboard-1280x800.png (and -full, -dark, -phone)"
