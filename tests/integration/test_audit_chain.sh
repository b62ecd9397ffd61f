#!/usr/bin/env bash
# The audit trail under load: audit events and commands over 10 clinics,
# consumed by 3 workers at once, the events produced twice (a redelivery of
# every one) → each clinic's chain has a gapless seq from 1, each event id and
# each applied command id is in the trail exactly once, `pgscribe audit
# verify` exits 0 and docs/audit_verify.py agrees. Sizes: PGS_AUDIT_EVENTS
# and PGS_AUDIT_COMMANDS (default 100 000 and 50 000: about 2 minutes on the
# 2-core machine).
. "$(dirname "$0")/lib.sh"
pgs_test_init audit_chain
PY=${PGS_PYTHON:-/usr/bin/python3}
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
E=${PGS_AUDIT_EVENTS:-100000} N=${PGS_AUDIT_COMMANDS:-50000}
C=10

t0=$SECONDS
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count "$E" --clinics $C --seed 5 \
    --emit "$T_DIR/events.jsonl" --no-progress >/dev/null
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count "$N" --clinics $C --seed 9 --no-progress >/dev/null
pgs_worker_start a
pgs_worker_start b
pgs_worker_start c
# the same events again, while the three workers consume: a redelivery of each
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count "$E" --clinics $C --seed 5 --no-progress >/dev/null
pgs_wait_applied "$N" 600
events() { pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'event'"; }
deadline=$((SECONDS + 600))
until [ "$(events)" -ge "$E" ]; do
    [ $SECONDS -lt $deadline ] || fail "only $(events) of $E audit events chained within 600 s"
    sleep 1
done
# the redelivered copies: wait until the audit topic's consumers are done
# (the events topic holds 2E messages; every worker's log reports duplicates)
deadline=$((SECONDS + 300))
dups() { cat "$T_DIR"/worker-*.log | grep -o 'audit_events stored=[0-9]* duplicates=[0-9]*' |
    awk -F'duplicates=' '{s += $2} END {print s + 0}'; }
until [ "$(dups)" -ge "$E" ]; do
    [ $SECONDS -lt $deadline ] || fail "only $(dups) of $E redelivered events seen as duplicates"
    sleep 1
done
# a traced DISCLOSE (AuditEvent v2 in JSON) is chained with its trace and
# disclosure fields; one without a purpose is a validation dead letter
TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
D1=$(cat /proc/sys/kernel/random/uuid)
D2=$(cat /proc/sys/kernel/random/uuid)
disclose() { # ID EXTRA-JSON
    printf '{"event_id":"%s","clinic_id":"clinic-001","actor":"dr-1","action":"DISCLOSE","resource_type":"patients","resource_id":"p1","outcome":"SUCCESS","occurred_at":1764633600000,"source":"ehr"%s}\n' "$1" "$2" |
        kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.audit" -k clinic-001 -H content-type=application/json -H "traceparent=$TP"
}
disclose "$D1" ',"recipient":"org:insurer-9","purpose":"PAYMENT","description":"claim summary"'
disclose "$D2" ',"recipient":"org:insurer-9"'
deadline=$((SECONDS + 120))
until [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE event_id = '$D1'")" = 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the DISCLOSE event was not chained within 120 s"
    sleep 0.5
done
got=$(pgs_scalar "$T_DB" "SELECT traceparent || '|' || recipient || '|' || purpose || '|' || description FROM audit.events WHERE event_id = '$D1'")
[ "$got" = "$TP|org:insurer-9|PAYMENT|claim summary" ] || fail "the DISCLOSE row holds: $got"
until [ "$(pgs_topic_count "$T_RUN.audit.dlq")" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the DISCLOSE without purpose was not dead-lettered"
    sleep 0.5
done
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.audit.dlq" -e -q -f '%h\n' | grep -q VALIDATE_DISCLOSURE ||
    fail "the dead letter does not say VALIDATE_DISCLOSURE"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE event_id = '$D2'")" = 0 ] ||
    fail "the DISCLOSE without purpose was chained"
E=$((E + 1))
for p in "${T_PIDS[@]}"; do pgs_worker_stop "$p"; done
T_PIDS=()
note "produced and applied in $((SECONDS - t0)) s: $E events (twice), $N commands, 3 workers"

# each event id and each applied command id once; seq gapless per clinic
got=$(pgs_scalar "$T_DB" "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM audit.events WHERE kind = 'event'")
[ "$got" = "$E $E" ] || fail "events in the trail (rows, distinct ids): $got, expected $E $E"
"$PY" - "$T_DIR/events.jsonl" "$ADMIN" "$D1" <<'PY' || fail "the trail's event ids differ from the produced ones"
import json, sys, psycopg2
want = {json.loads(l)["event_id"] for l in open(sys.argv[1]) if l.strip()} | {sys.argv[3]}
cur = psycopg2.connect(sys.argv[2]).cursor()
cur.execute("SELECT event_id::text FROM audit.events WHERE kind = 'event'")
sys.exit(0 if {r[0] for r in cur} == want else 1)
PY
got=$(pgs_scalar "$T_DB" "SELECT count(*) || ' ' || count(DISTINCT command_id) FROM audit.events WHERE kind = 'write'")
[ "$got" = "$N $N" ] || fail "write audits in the trail (rows, distinct ids): $got, expected $N $N"
missing=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands a
    WHERE NOT EXISTS (SELECT 1 FROM audit.events e WHERE e.kind = 'write' AND e.command_id = a.command_id)")
[ "$missing" -eq 0 ] || fail "$missing applied commands have no write audit"
bad=$(pgs_scalar "$T_DB" "SELECT count(*) FROM (SELECT clinic_id FROM audit.events GROUP BY clinic_id
    HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*)) s")
[ "$bad" -eq 0 ] || fail "$bad clinics have a seq with gaps or repeats"
clinics=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.chain_heads h JOIN (SELECT clinic_id, max(seq) m
    FROM audit.events GROUP BY 1) e USING (clinic_id) WHERE h.seq = e.m")
[ "$clinics" -eq $C ] || fail "$clinics of $C chain heads are at their chain's last seq"
# within one append (one recorded_at), rows follow the Kafka offsets of each partition
unordered=$(pgs_scalar "$T_DB" "SELECT count(*) FROM (SELECT source_offset, lag(source_offset) OVER w AS prev
    FROM audit.events WINDOW w AS (PARTITION BY clinic_id, recorded_at, source_topic, source_partition
    ORDER BY seq)) s WHERE prev > source_offset")
[ "$unordered" -eq 0 ] || fail "$unordered rows chained before an earlier offset of their partition"

"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/verify.out" ||
    fail "pgscribe audit verify: $(cat "$T_DIR/verify.out")"
grep -q "verified $((E + N)) rows of $C clinics" "$T_DIR/verify.out" ||
    fail "verify read other rows: $(cat "$T_DIR/verify.out")"
note "$(tail -n 1 "$T_DIR/verify.out")"
"$PY" "$REPO/docs/audit_verify.py" "$ADMIN" >"$T_DIR/py.out" ||
    fail "audit_verify.py: $(cat "$T_DIR/py.out")"
grep -q "^0 broken$" "$T_DIR/py.out" || fail "audit_verify.py: $(cat "$T_DIR/py.out")"
echo "ok: $E events (each delivered twice, one traced DISCLOSE) and $N commands chained once over $C clinics by 3" \
    "workers; seq gapless; both verifiers agree"
