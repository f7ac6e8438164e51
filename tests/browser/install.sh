#!/usr/bin/env bash
# Installs playwright-core, pinned by this directory's package-lock.json, into
# WORK_DIR/node_modules (once per lock file; npm ci from the npm registry).
# Used by run.sh (the browser test) and scripts/bench.sh (render timing).
#   install.sh WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" ||
   [ ! -f "$work/node_modules/playwright-core/package.json" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
