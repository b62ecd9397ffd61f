#!/usr/bin/env bash
# pgscribe's build command: on a fresh Debian 12 machine, installs the Debian
# packages that are missing (scripts/deps.sh) and builds build/pgscribe, for
# whoever wants the binary without running the tests.
#
# usage: scripts/build.sh        (build folder: $PGS_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."  # the real checkout, even when called through a symlink

scripts/deps.sh
BUILD=${PGS_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target pgscribe >"$BUILD.log" 2>&1 || { tail -n 60 "$BUILD.log"; exit 1; }
echo "build: ok, $BUILD/pgscribe ($("$BUILD/pgscribe" version | head -n 1))"
