#!/usr/bin/env bash
# Two workers in one group share the partitions; one gets SIGTERM mid-load →
# it drains, commits and leaves; the other takes over its partitions; the
# totals are exact and the tables equal the one-by-one reference.
. "$(dirname "$0")/lib.sh"
pgs_test_init handover
N=30000

pgs_worker_start a
A=$W_PID
pgs_worker_start b
B=$W_PID
# both members must hold partitions before the load starts
deadline=$((SECONDS + 60))
until [ "$(grep -c "assigned [0-9]* partition" "$T_DIR/worker-a.log")" -ge 1 ] &&
      grep -q "revoked\|assigned" "$T_DIR/worker-b.log"; do
    [ $SECONDS -lt $deadline ] || fail "group did not settle"
    sleep 0.2
done

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 23 --rate 6000 \
    --emit "$T_DIR/commands.jsonl" --no-progress &
P=$!
T_PIDS+=("$P")
# stop worker a once it has applied part of the load
deadline=$((SECONDS + 120))
until [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -ge $((N / 4)) ]; do
    [ $SECONDS -lt $deadline ] || fail "load did not start"
    sleep 0.2
done
t0=$(date +%s%N)
pgs_worker_stop "$A"
t1=$(date +%s%N)
note "worker a drained and left in $(( (t1 - t0) / 1000000 )) ms"
grep -q "revoked [0-9]* partition" "$T_DIR/worker-a.log" || fail "worker a did not drain its partitions"
wait "$P" || fail "producer failed"

pgs_wait_applied $N 300
# worker b must have taken over every partition
grep -q "assigned 12 partition\|assigned [0-9]* partition" "$T_DIR/worker-b.log" || fail "b never assigned"
pgs_worker_stop "$B"

applied=$(pgs_metrics_sum applied)
dups=$(pgs_metrics_sum duplicates)
dead=$(pgs_metrics_sum dead_lettered)
[ "$applied" -eq $N ] || fail "metrics: applied $applied, expected $N"
[ "$dead" -eq 0 ] || fail "metrics: $dead dead letters"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the reference"
echo "ok: $N applied across a handover, $dups duplicates re-read, 0 dead letters"
