#!/usr/bin/env bash
# pgscribe's test command. On a fresh Debian 12 machine it installs what is
# missing, builds pgscribe plain and with ASan + UBSan, and runs every test
# with ctest: unit tests (both builds), the format check, and the integration
# tests against a real PostgreSQL and a real Kafka broker, which ctest's
# stack.up/stack.down fixtures start and stop. The last lines are ctest's
# summary.
#
# usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
BUILD=${PGS_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.log" 2>&1 || { tail -n 60 "$BUILD.log"; exit 1; }
echo "build: ok ($(grep -c 'Linking' "$BUILD.log") targets linked)"
cd "$BUILD"
exec ctest --output-on-failure "$@"
