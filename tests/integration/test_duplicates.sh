#!/usr/bin/env bash
# The same 5 000 commands produced twice → applied once, 5 000 duplicates
# counted on the metrics topic, tables equal the one-by-one reference.
. "$(dirname "$0")/lib.sh"
# The worker runs as the ASan + UBSan build here: any memory error, UB or
# leak makes it exit non-zero, which pgs_worker_stop reports.
export PGSCRIBE_WORKER_BIN=${PGSCRIBE_ASAN_BIN:-$PGSCRIBE_BIN}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# multi-row statements from two commands of a shape on, so they carry most
# of this load (the default threshold leaves the loadgen mix to single ones)
export T_EXTRA_CONF=$'[apply]\nmulti_row_min = 2'
pgs_test_init duplicates
N=5000

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 11 \
    --emit "$T_DIR/commands.jsonl" --no-progress
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.jsonl" --no-progress
pgs_worker_start a
# every one of the 2N messages must have been consumed before the stop
deadline=$((SECONDS + 300))
until [ "$(pgs_metrics_sum consumed)" -ge $((2 * N)) ]; do
    [ $SECONDS -lt $deadline ] || fail "not all $((2 * N)) messages consumed within 300 s"
    sleep 1
done
pgs_worker_stop "$W_PID"
pgs_wait_applied $N 10

applied=$(pgs_metrics_sum applied)
dups=$(pgs_metrics_sum duplicates)
consumed=$(pgs_metrics_sum consumed)
[ "$consumed" -eq $((2 * N)) ] || fail "consumed $consumed, expected $((2 * N))"
[ "$applied" -eq $N ] || fail "applied $applied, expected $N"
[ "$dups" -eq $N ] || fail "duplicates $dups, expected $N"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the reference"
echo "ok: $consumed consumed, $applied applied, $dups duplicates"
