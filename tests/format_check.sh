#!/usr/bin/env bash
# Fails when a C file of pgscribe differs from what clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
for f in src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/unit/*/*.c tests/fuzz/*.c; do
    [ -e "$f" ] || continue
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not clang-formatted: $f"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "format: all C files clang-formatted"
exit $bad
