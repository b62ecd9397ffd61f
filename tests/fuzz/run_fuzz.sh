#!/usr/bin/env bash
# Builds tests/fuzz/fuzz_decode.c with clang (libFuzzer + ASan + UBSan) from
# pgscribe's sources and runs it over a copy of the seed corpus for a bounded
# time. Seeds start with the target's mode byte: bit 0 JSON, bit 1 an
# AuditEvent (0x00 Avro command, 0x01 JSON command, 0x02 Avro audit event,
# 0x03 JSON audit event). Exits non-zero on any crash, leak, UB report or build failure.
# usage: run_fuzz.sh SCHEMAS_EMBEDDED_C   (the build folder's generated file)
# env:   PGS_FUZZ_SECONDS (default 60), PGS_FUZZ_KEEP=1 keeps the work folder
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EMBED=${1:?usage: run_fuzz.sh SCHEMAS_EMBEDDED_C}
SECS=${PGS_FUZZ_SECONDS:-60}
CC=${PGS_FUZZ_CC:-clang}
[ -f "$EMBED" ] || { echo "FAIL: $EMBED missing (build pgscribe first)" >&2; exit 1; }
command -v "$CC" >/dev/null || { echo "FAIL: $CC not found (scripts/deps.sh)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/pgscribe-fuzz.XXXXXX)
[ "${PGS_FUZZ_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

PKGS="rdkafka libpq avro-c jansson libcrypto inih libmicrohttpd"
# shellcheck disable=SC2086
CFLAGS="-std=c11 -g -O1 -D_GNU_SOURCE -DPGS_VERSION=\"fuzz\" -I$REPO/src
        $(pkg-config --cflags $PKGS) -fsanitize=fuzzer-no-link,address,undefined
        -fno-sanitize-recover=all -fno-omit-frame-pointer"

# Every source but main.c goes into an archive, so the link pulls in only what
# the target reaches (and libFuzzer supplies main). A source that does not
# compile is left out with a note: if the target needs it, the link fails.
objs=()
for src in "$REPO"/src/*/*.c "$EMBED"; do
    # stage folders may hold files of one name (run/metrics.c, command/metrics.c)
    obj=$WORK/$(basename "$(dirname "$src")")_$(basename "$src" .c).o
    # shellcheck disable=SC2086
    if "$CC" $CFLAGS -c "$src" -o "$obj" 2>"$WORK/cc.err"; then
        objs+=("$obj")
    else
        echo "note: $(basename "$src") does not compile with $CC; left out" >&2
    fi
done
ar rcs "$WORK/libpgscribe_fuzz.a" "${objs[@]}"
# shellcheck disable=SC2086
"$CC" $CFLAGS -fsanitize=fuzzer "$REPO/tests/fuzz/fuzz_decode.c" "$WORK/libpgscribe_fuzz.a" \
    $(pkg-config --libs $PKGS) -lpthread -lm -o "$WORK/fuzz_decode"

# The repository's corpus is the seed; what the run discovers stays in $WORK.
mkdir -p "$WORK/corpus" "$WORK/artifacts"
cp "$REPO"/tests/fuzz/corpus/* "$WORK/corpus/"
echo "fuzz_decode: ${SECS}s over $(ls "$WORK/corpus" | wc -l) seeds"
rc=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$WORK/fuzz_decode" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$WORK/artifacts/" \
    "$WORK/corpus" >"$WORK/fuzz.log" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
    tail -n 60 "$WORK/fuzz.log" >&2
    for a in "$WORK"/artifacts/*; do
        [ -f "$a" ] || continue
        echo "FAIL: finding $(basename "$a"): $(od -An -tx1 -N64 "$a" | tr -s ' \n' ' ')" >&2
    done
    echo "FAIL: fuzz_decode exited $rc (set PGS_FUZZ_KEEP=1 to keep $WORK)" >&2
    exit 1
fi
grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$WORK/fuzz.log" || true
echo "fuzz_decode: no crash, leak or UB in ${SECS}s"
