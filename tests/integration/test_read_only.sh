#!/usr/bin/env bash
# A read-only database never dead-letters a valid command: 20 000 commands at
# 2 000/s; once a quarter is applied the whole cluster turns read-only
# (default_transaction_read_only, as a standby or a primary demoted during a
# failover answers: SQLSTATE 25006) for 20 s → the worker stays alive, opens
# its circuit breaker, dead-letters nothing and spends no attempts; once the
# database takes writes again every command is applied once and the tables
# equal the one-by-one reference.
. "$(dirname "$0")/lib.sh"
pgs_test_init read_only
N=20000
READ_ONLY_S=20
LOG=$T_DIR/worker-a.log

read_only() { # on|off, for every session of the cluster, existing ones too
    if [ "$1" = on ]; then
        pgs_psql postgres -c "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
    else
        pgs_psql postgres -c "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null
    fi
    pgs_psql postgres -c "SELECT pg_reload_conf()" >/dev/null
}
# other tests share the cluster: it takes writes again whatever happens here
trap 'rc=$?; set +e; read_only off; (exit $rc); pgs_test_cleanup; exit $rc' EXIT

pgs_worker_start a
A=$W_PID
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 41 --rate 2000 \
    --emit "$T_DIR/commands.jsonl" --no-progress &
P=$!
T_PIDS+=("$P")

deadline=$((SECONDS + 120))
until [ "$(pgs_applied_now)" -ge $((N / 4)) ]; do
    [ $SECONDS -lt $deadline ] || fail "a quarter of the load was not applied within 120 s"
    sleep 0.1
done
read_only on
before=$(pgs_applied_now)
note "cluster read-only at $before applied, for ${READ_ONLY_S}s"
sleep 2
during=$(pgs_applied_now)
sleep $((READ_ONLY_S - 2))
kill -0 "$A" 2>/dev/null || fail "worker died while the database was read-only"
stuck=$(pgs_applied_now)
# a transaction that committed just before the switch may land after `before`
[ "$stuck" -eq "$during" ] || fail "rows were written while the database was read-only ($during → $stuck)"
grep -q "25006" "$LOG" || fail "the worker did not log the read-only SQLSTATE 25006"
read_only off
t0=$(pgs_clock_now_ms)
resume_ms=$(pgs_wait_growth "$t0" "$stuck" 60)
note "writable again: applied_commands grew after $resume_ms ms (at $stuck rows)"

wait "$P" || fail "producer failed"
pgs_wait_applied $N 300
kill -0 "$A" 2>/dev/null || fail "worker died after the read-only spell"
pgs_worker_stop "$A"

dlq=$(pgs_dlq_count)
[ "$dlq" -eq 0 ] || fail "$dlq dead letters: $(head -n 3 "$T_DIR/dlq.jsonl")"
distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"
dead=$(pgs_metrics_sum dead_lettered)
[ "$dead" -eq 0 ] || fail "metrics: $dead dead letters"
echo "ok: ${READ_ONLY_S}s read-only at $before applied, resumed ${resume_ms} ms after; $N applied once, 0 dead letters"
