#!/usr/bin/env bash
# The audit maintenance loop. Two workers: one is elected by the advisory
# lock and runs the loop (its log names it), the other stands by and runs no
# pass. With every partition of audit.events dropped (a superuser), audit
# events and commands produced meanwhile cannot be chained (23514, transient):
# they retry, none is dead-lettered. A SIGHUP that lowers
# audit.maintenance_interval_ms lets the loop run again: it creates the
# partitions (audit.partitions_ahead = 2: three months), and everything
# applies. The activity views, refreshed by the loop, equal direct aggregates
# of audit.events; the worker role cannot read them, pgscribe_auditor can.
# When the elected worker stops, the other takes the lock over.
. "$(dirname "$0")/lib.sh"
T_EXTRA_CONF=$'[audit]\nmaintenance_interval_ms = 3600000\npartitions_ahead = 2'
pgs_test_init audit_maintenance
WORKER="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgscribe_worker"
E=300 N=200

pgs_worker_start a
PA=$W_PID
deadline=$((SECONDS + 30))
until grep -q "elected: it runs the audit maintenance loop" "$T_DIR/worker-a.log"; do
    [ $SECONDS -lt $deadline ] || fail "worker a was not elected: $(grep maintenance "$T_DIR/worker-a.log")"
    sleep 0.2
done
id_a=$(grep -o 'worker [^ ]* elected' "$T_DIR/worker-a.log" | head -n 1 | cut -d' ' -f2)
[ -n "$id_a" ] || fail "the elected line names no worker"
pgs_worker_start b
PB=$W_PID
deadline=$((SECONDS + 30))
until grep -q "another worker runs the audit maintenance loop" "$T_DIR/worker-b.log"; do
    [ $SECONDS -lt $deadline ] || fail "worker b does not stand by: $(grep maintenance "$T_DIR/worker-b.log")"
    sleep 0.2
done
grep -q "elected" "$T_DIR/worker-b.log" && fail "worker b was elected too"
locks=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'pgscribe-maintenance'")
[ "$locks" = 1 ] || fail "$locks maintenance advisory locks held, expected 1"

# --- no partition at all: appends retry
parts() { pgs_scalar "$T_DB" "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit.events'::regclass"; }
for p in $(pgs_scalar "$T_DB" "SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit.events'::regclass"); do
    pgs_psql "$T_DB" -c "DROP TABLE $p" >/dev/null
done
[ "$(parts)" = 0 ] || fail "partitions left: $(parts)"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count "$E" --clinics 3 --seed 3 --no-progress >/dev/null
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count "$N" --clinics 3 --seed 4 --no-progress >/dev/null
disclose() { # ID RECIPIENT
    printf '{"event_id":"%s","clinic_id":"clinic-001","actor":"dr-1","action":"DISCLOSE","resource_type":"patients","resource_id":"p1","outcome":"SUCCESS","occurred_at":1764633600000,"source":"ehr","recipient":"%s","purpose":"TREATMENT","description":"summary"}\n' "$1" "$2" |
        kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.audit" -k clinic-001 -H content-type=application/json
}
for r in org:a org:b org:a; do disclose "$(cat /proc/sys/kernel/random/uuid)" "$r"; done
sleep 6
got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events")
[ "$got" = 0 ] || fail "$got rows chained without a partition"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" = 0 ] ||
    fail "commands applied while their audit rows had no partition"
grep -q "failed transiently (SQLSTATE 23514)" "$T_DIR"/worker-*.log ||
    fail "no transient 23514 retry logged while the partitions were missing"

# --- the loop runs again (the interval is reloadable) and fixes it
sed -i 's/^maintenance_interval_ms = .*/maintenance_interval_ms = 500/' "$T_CONF"
kill -HUP "$PA" "$PB"
pgs_wait_applied "$N" 120
deadline=$((SECONDS + 120))
until [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'event'")" -ge $((E + 3)) ]; do
    [ $SECONDS -lt $deadline ] || fail "audit events not chained after the loop ran"
    sleep 0.5
done
[ "$(parts)" = 3 ] || fail "$(parts) partitions after the loop, expected 3 (this month and 2 ahead)"
grep -q "audit maintenance pass: 3 partition(s) created" "$T_DIR/worker-a.log" ||
    fail "worker a did not log the partitions it created"
grep -q "audit maintenance pass" "$T_DIR/worker-b.log" && fail "worker b ran a maintenance pass"
[ "$(pgs_topic_count "$T_RUN.audit.dlq")" = 0 ] || fail "audit events were dead-lettered"
[ "$(pgs_topic_count "$T_RUN.commands.dlq")" = 0 ] || fail "commands were dead-lettered"
"$PGSCRIBE_BIN" audit verify --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres" \
    >"$T_DIR/verify.out" || fail "the trail does not verify: $(cat "$T_DIR/verify.out")"

# --- the views, refreshed by the loop, equal the direct aggregates
cmp_view() { # VIEW DIRECT-QUERY
    local deadline=$((SECONDS + 30)) diff
    while :; do
        diff=$(pgs_scalar "$T_DB" "SELECT count(*) FROM ((TABLE $1 EXCEPT $2) UNION ALL ($2 EXCEPT TABLE $1)) d")
        [ "$diff" = 0 ] && [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM $1")" -gt 0 ] && return 0
        [ $SECONDS -lt $deadline ] || fail "$1 differs from audit.events in $diff rows"
        sleep 0.5
    done
}
day="(recorded_at AT TIME ZONE 'UTC')::date"
cmp_view audit.activity_writes "SELECT clinic_id, $day, entity, action, count(*) FROM audit.events WHERE kind = 'write' GROUP BY 1, 2, 3, 4"
cmp_view audit.activity_actions "SELECT clinic_id, $day, action, coalesce(outcome, ''), count(*) FROM audit.events WHERE kind = 'event' GROUP BY 1, 2, 3, 4"
cmp_view audit.activity_disclosures "SELECT clinic_id, $day, count(*), count(DISTINCT recipient), array_agg(DISTINCT recipient ORDER BY recipient) FROM audit.events WHERE action = 'DISCLOSE' GROUP BY 1, 2"
got=$(pgs_scalar "$T_DB" "SELECT disclosures || ' ' || recipient_count || ' ' || recipients::text FROM audit.activity_disclosures WHERE clinic_id = 'clinic-001'")
[ "$got" = "3 2 {org:a,org:b}" ] || fail "disclosures of clinic-001: $got"
total=$(pgs_scalar "$T_DB" "SELECT sum(writes) FROM audit.activity_writes")
[ "$total" = "$N" ] || fail "activity_writes counts $total writes, expected $N"
if PGOPTIONS="-c client_min_messages=warning" psql -X -q -d "$WORKER" -c "SELECT 1 FROM audit.activity_writes" >/dev/null 2>&1; then
    fail "the worker role may read the activity views"
fi
pgs_psql "$T_DB" -c "SET ROLE pgscribe_auditor" -c "SELECT count(*) FROM audit.activity_actions" >/dev/null ||
    fail "pgscribe_auditor cannot read the activity views"

# --- the elected worker stops: the other takes over
pgs_worker_stop "$PA"
pgs_forget_pid "$PA"
deadline=$((SECONDS + 30))
until grep -q "elected: it runs the audit maintenance loop" "$T_DIR/worker-b.log"; do
    [ $SECONDS -lt $deadline ] || fail "worker b did not take the maintenance over"
    sleep 0.2
done
echo "ok: one elected maintenance worker ($id_a); appends retried without partitions and applied" \
    "once the loop created them, none dead-lettered; views equal the direct aggregates; handover"
