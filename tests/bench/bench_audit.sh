#!/usr/bin/env bash
# pgscribe's audit-trail benchmark: produce N AuditEvents first, then time one
# worker chaining them into audit.events (per-clinic hash chain, one head lock
# per transaction), and time `pgscribe audit verify` recomputing every chain.
# Prints figures; it is not a timed test.
#
# usage: tests/bench/bench_audit.sh [--count N] [--clinics C] [--jobs J] [--keep]
#   --count N      audit events produced (default 200000)
#   --clinics C    clinics the events spread over (default 20)
#   --jobs J       connections `audit verify` runs clinics on (default 2)
#   --keep         keep the work folder (config, worker log)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR.
# Exit status: 0 when the run completed and the chains verified; 1 when the
# worker died, timed out, or verification failed; 2 on bad arguments.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
COUNT=200000
CLINICS=20
JOBS=2
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--count N] [--clinics C] [--jobs J] [--keep]" >&2; exit 2 ;;
    esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $CLINICS =~ ^[1-9][0-9]*$ && $JOBS =~ ^[1-9][0-9]*$ ]] ||
    { echo "bench-audit: --count, --clinics and --jobs take positive integers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench-audit: $BIN not built" >&2; exit 1; }

# The stack is shared with other users: start it if it is down, never stop it.
"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

DB=pgs_bench_audit
RUN=bench-audit-$$-$(date +%s)
WORK=$(mktemp -d /tmp/pgscribe-bench-audit.XXXXXX)
CONF=$WORK/pgscribe.conf
LOG=$WORK/worker.log
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=postgres"
W_PID=

note() { echo "bench-audit: $*" >&2; }
fail() { echo "bench-audit: FAIL: $*" >&2; exit 1; }
psql_db() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
    [ -n "$W_PID" ] && kill -9 "$W_PID" 2>/dev/null
    [ $KEEP -eq 1 ] && note "work folder kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }

psql_db -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d postgres \
    -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$BIN" migrate --conninfo "$ADMIN" >/dev/null
cat >"$CONF" <<CONF
[topic]
commands = $RUN.commands
commands_dlq = $RUN.commands.dlq
audit = $RUN.audit
audit_dlq = $RUN.audit.dlq
metrics = $RUN.metrics
[consumer]
group = $RUN
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
export PGSCRIBE_PG_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker"
"$BIN" topics -c "$CONF" >/dev/null
note "producing $COUNT audit events over $CLINICS clinics"
"$BIN" produce -c "$CONF" --audit --count "$COUNT" --clinics "$CLINICS" --seed 9 --no-progress \
    >/dev/null 2>&1 || fail "producing the events failed"

t0=$(now_ms)
"$BIN" run -c "$CONF" >"$LOG" 2>&1 &
W_PID=$!
first=0
deadline=$((SECONDS + 1200))
while :; do
    kill -0 "$W_PID" 2>/dev/null || fail "the worker exited: $(tail -n 5 "$LOG")"
    got=$(psql_db -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$DB" \
        -c "SELECT count(*) FROM audit.events WHERE kind = 'event'")
    [ "$first" -eq 0 ] && [ "$got" -gt 0 ] && first=$(now_ms)
    [ "$got" -ge "$COUNT" ] && break
    [ $SECONDS -lt $deadline ] || fail "only $got of $COUNT events stored in 1200 s"
    sleep 0.2
done
t1=$(now_ms)
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$W_PID/stat")
kill -TERM "$W_PID"
wait "$W_PID" || true
W_PID=
ingest_ms=$((t1 - first))
[ $ingest_ms -gt 0 ] || ingest_ms=1

vt0=$(now_ms)
"$BIN" audit verify --jobs "$JOBS" --conninfo "$ADMIN" >"$WORK/verify.out" 2>&1 ||
    fail "audit verify failed: $(tail -n 5 "$WORK/verify.out")"
vt1=$(now_ms)
verify_ms=$((vt1 - vt0))
[ $verify_ms -gt 0 ] || verify_ms=1

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $(psql_db -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d postgres -c 'SHOW server_version')"
echo "audit events: $COUNT over $CLINICS clinics"
echo "ingested with the chain: $((COUNT * 1000 / ingest_ms)) events/s (first to last stored, $ingest_ms ms; worker CPU $cpu s; start to first $((first - t0)) ms)"
echo "verified: $((COUNT * 1000 / verify_ms)) events/s with $JOBS job(s) ($verify_ms ms wall, connection included)"
sed 's/^/  audit verify: /' "$WORK/verify.out" | tail -n 3
