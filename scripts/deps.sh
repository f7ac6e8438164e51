#!/usr/bin/env bash
# Installs the Debian packages memscope needs to build and test, or, when not
# run as root, prints the exact command and fails. Usage: scripts/deps.sh [extra packages...]
set -eu
need=(cmake gcc make pkg-config libcjson-dev libcmocka-dev libdw-dev zlib1g-dev libzstd-dev "$@")
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "memscope: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "memscope: missing Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
