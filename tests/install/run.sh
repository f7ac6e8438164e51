#!/bin/sh
# run.sh BUILD_DIR LIBDIR SRC_DIR WORK_DIR [CC] [SANITIZE]
# Installs BUILD_DIR into WORK_DIR/prefix, then builds and runs SRC_DIR/outside.c
# twice: with `pkg-config --cflags --libs memscope` and with find_package, the
# same for outside_capture.c with memscope-capture / memscope::capture, and
# runs the installed `memscope run`.
# Exits 77 (skipped) when SANITIZE is not empty. $CMAKE and $PKG_CONFIG name
# the tools (default: cmake and pkg-config from PATH).
set -eu
build=$1 libdir=$2 src=$3 work=$4 cc=${5:-cc} sanitize=${6:-}
cmake=${CMAKE:-cmake} pkgconfig=${PKG_CONFIG:-pkg-config}

if [ -n "$sanitize" ]; then
    echo "install test skipped in a sanitizer build ($sanitize)"
    exit 77
fi

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
"$cmake" --install "$build" --prefix "$prefix"

pcdir=$prefix/$libdir/pkgconfig
if [ ! -f "$pcdir/memscope.pc" ]; then
    pc=$(find "$prefix" -name memscope.pc | head -n 1)
    if [ -z "$pc" ]; then
        echo "memscope.pc was not installed under $prefix" >&2
        exit 1
    fi
    pcdir=$(dirname "$pc")
fi

echo "== pkg-config ($pcdir)"
flags=$(PKG_CONFIG_PATH=$pcdir "$pkgconfig" --cflags --libs memscope)
echo "pkg-config --cflags --libs memscope: $flags"
case "$flags" in
*"$prefix"*) ;;
*)
    echo "memscope.pc does not point into the prefix it was installed to ($prefix)" >&2
    exit 1
    ;;
esac
# shellcheck disable=SC2086 # $flags is a list of words
"$cc" -std=c11 -Wall -Wextra -o "$work/outside-pkgconfig" "$src/outside.c" $flags
"$work/outside-pkgconfig"
flags=$(PKG_CONFIG_PATH=$pcdir "$pkgconfig" --cflags --libs memscope-capture)
echo "pkg-config --cflags --libs memscope-capture: $flags"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -o "$work/outside-capture-pkgconfig" "$src/outside_capture.c" $flags
"$work/outside-capture-pkgconfig"

echo "== find_package"
"$cmake" -S "$src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc"
"$cmake" --build "$work/cmake-build"
"$work/cmake-build/outside"
"$work/cmake-build/outside_capture"

echo "== the installed memscope command"
"$prefix/bin/memscope" run -q -o "$work/run.json" -- /bin/true
test -s "$work/run.json"
echo "install test passed"
