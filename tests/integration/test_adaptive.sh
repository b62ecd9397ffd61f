#!/usr/bin/env bash
# The adaptive in-flight limit against a database where every write statement
# waits 10 ms (a statement trigger with pg_sleep: latency, not CPU, as with
# a database far away). More transactions at once then commit more, so the
# limit must climb from its start at 2 (slow start, then quarter steps) to
# above 8, the initial limit of earlier versions, and the worker must open the extra
# connections it needs; every command is still applied once. (With 3 ms, the
# CPU the 2-core machine spends per transaction was a large enough part of
# its latency that the rate's noise could hide the gain of more in flight,
# and the limit stayed at 8 or below in one run. Transactions of 10 commands
# over 50 clinics also give each window more of them, and fewer waits on a
# clinic's audit chain head.)
. "$(dirname "$0")/lib.sh"
# short transactions (10 commands) give each 1 s window enough
# of them for a steady rate
export T_EXTRA_CONF=$'[apply]\nmax_batch = 10'
pgs_test_init adaptive
N=20000

pgs_psql "$T_DB" -c "
CREATE FUNCTION pgscribe.test_latency() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END \$\$;
CREATE TRIGGER latency AFTER INSERT OR UPDATE OR DELETE ON clinic.patients
    FOR EACH STATEMENT EXECUTE FUNCTION pgscribe.test_latency();
CREATE TRIGGER latency AFTER INSERT OR UPDATE OR DELETE ON clinic.appointments
    FOR EACH STATEMENT EXECUTE FUNCTION pgscribe.test_latency();
CREATE TRIGGER latency AFTER INSERT OR UPDATE OR DELETE ON clinic.encounters
    FOR EACH STATEMENT EXECUTE FUNCTION pgscribe.test_latency();
CREATE TRIGGER latency AFTER INSERT OR UPDATE OR DELETE ON clinic.prescriptions
    FOR EACH STATEMENT EXECUTE FUNCTION pgscribe.test_latency();" >/dev/null

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 50 --seed 13 --no-progress
pgs_worker_start a
max_conns=0
deadline=$((SECONDS + 600))
while :; do
    got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
    c=$(pgs_worker_conns)
    [ "$c" -gt "$max_conns" ] && max_conns=$c
    [ "$got" -ge $N ] && break
    [ $SECONDS -lt $deadline ] || fail "only $got of $N commands applied within 600 s"
    sleep 0.5
done
pgs_worker_stop "$W_PID"
pgs_wait_applied $N 10

audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq $N ] || fail "write audit rows $audits != $N"
"$PGSCRIBE_BIN" metrics -c "$T_CONF" --timeout-ms 30000 >"$T_DIR/metrics.jsonl"
read -r max_limit max_txns applied < <(python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
print(max(r["in_flight_limit"] for r in recs), max(r["in_flight_transactions"] for r in recs),
      sum(r["applied"] for r in recs))' "$T_DIR/metrics.jsonl")
note "limit reached $max_limit, transactions open at most $max_txns, worker connections at most $max_conns"
[ "$applied" -eq $N ] || fail "metrics: applied $applied, expected $N"
[ "$max_limit" -gt 8 ] || fail "the in-flight limit never rose above 8 from its start at 2 (max $max_limit)"
[ "$max_txns" -gt 8 ] || fail "never more than $max_txns transactions open: the limit was not used"
[ "$max_conns" -gt 12 ] || fail "the worker never opened more than $max_conns connections"
# at most apply.max_in_flight (50) + audit.max_in_flight (4) write
# connections, plus the worker's side connections: catalog, audit
# maintenance and, once a statement profile asked for one, EXPLAIN
[ "$max_conns" -le 57 ] ||
    fail "$max_conns connections: more than apply.max_in_flight + audit + 3 side connections"
echo "ok: $N applied once; in-flight limit climbed to $max_limit, $max_txns transactions open, $max_conns connections"
