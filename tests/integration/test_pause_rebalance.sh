#!/usr/bin/env bash
# A partition paused under back-pressure is fetched again after a rebalance
# hands it back. librdkafka keeps a partition's pause across a revocation and
# a new assignment (librdkafka #1849), while the worker starts each assigned
# partition as unpaused: without an explicit resume at assignment, a
# partition paused before the rebalance would never be fetched again.
#
# Worker a fills its per-partition window (apply.partition_window_max = 20)
# against a locked table, so its partitions pause; worker b joins (a's
# partitions are revoked while paused, the drain times out on the lock) and
# leaves again, so a gets its partitions back; the lock goes; every command
# must be applied.
. "$(dirname "$0")/lib.sh"
T_EXTRA_CONF=$'[apply]\npartition_window_max = 20\n[shutdown]\ndrain_timeout_ms = 1500'
T_PARTITIONS=4
pgs_test_init pause_rebalance

total=2000
pgs_worker_start a
pid_a=$W_PID
log_a=$T_DIR/worker-a.log
# every entity table locked: nothing commits, the windows fill, partitions pause
pgs_psql "$T_DB" -c "BEGIN; LOCK TABLE clinic.patients, clinic.appointments, clinic.encounters,
    clinic.prescriptions IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(25); COMMIT;" >/dev/null &
locker=$!
T_PIDS+=("$locker")
sleep 1
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $total --clinics 4 --seed 81 \
    --emit "$T_DIR/commands.jsonl" --no-progress 2>/dev/null || fail "producer failed"
sleep 2 # a has fetched up to its windows and paused

pgs_worker_start b # a's paused partitions are revoked (drain times out on the lock)
pid_b=$W_PID
sleep 2
pgs_worker_stop "$pid_b" # and handed back to a
pgs_forget_pid "$pid_b"
deadline=$((SECONDS + 30))
until [ "$(grep -c 'assigned [0-9]* partition' "$log_a")" -ge 3 ]; do
    [ $SECONDS -lt $deadline ] || fail "worker a did not get its partitions back"
    sleep 0.2
done
wait "$locker" || fail "the locking session failed"
pgs_forget_pid "$locker"

pgs_wait_applied $total 90
[ "$(pgs_dlq_count)" -eq 0 ] || fail "dead letters"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the sequential reference"
pgs_worker_stop "$pid_a"
echo "ok: partitions paused before a rebalance were fetched again after it; $total applied once"
