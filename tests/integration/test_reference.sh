#!/usr/bin/env bash
# 20 000 mixed commands (INSERT/UPSERT/UPDATE/DELETE over 20 clinics, keys
# repeated) through the real worker → the final tables equal a reference
# built by applying the same commands one by one, in order; each command id
# is recorded once; the metrics topic's applied counts sum to 20 000.
. "$(dirname "$0")/lib.sh"
# multi-row statements from two commands of a shape on, so they carry most
# of this load (the default threshold leaves the loadgen mix to single ones)
export T_EXTRA_CONF=$'[apply]\nmulti_row_min = 2'
pgs_test_init reference
N=20000

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 7 \
    --emit "$T_DIR/commands.jsonl" --no-progress
pgs_worker_start a
pgs_wait_applied $N 300
# the adaptive limit opens command connections as it needs them (2 at
# start, doubling while that pays), not all apply.max_in_flight = 50; plus the 4 of the audit pool
conns=$(pgs_worker_conns)
[ "$conns" -ge 5 ] && [ "$conns" -le 20 ] ||
    fail "the worker holds $conns connections, expected 5..20 (adaptive limit, lazy opening)"
note "worker connections: $conns (of at most 54)"
pgs_worker_stop "$W_PID"

distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N"
audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq $N ] || fail "write audit rows $audits != $N"

pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"

applied=$(pgs_metrics_sum applied)
[ "$applied" -eq $N ] || fail "metrics topic: applied sums to $applied, expected $N"
dups=$(pgs_metrics_sum duplicates)
dead=$(pgs_metrics_sum dead_lettered)
[ "$dead" -eq 0 ] || fail "metrics topic: $dead dead letters, expected 0"
echo "ok: $N commands applied once, tables equal the reference, metrics applied=$applied duplicates=$dups"
