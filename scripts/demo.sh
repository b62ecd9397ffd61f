#!/usr/bin/env bash
# pgscribe's demo: on a fresh Debian 12 machine, brings the stack up (real
# PostgreSQL, real Kafka), runs a worker, produces 100 000 commands over 20
# clinics with a progress bar, prints a summary and the last record read back
# from the metrics topic, and tears everything down.
#
# usage: scripts/demo.sh [--count N] [--clinics C]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=100000
CLINICS=20
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    *) echo "usage: $0 [--count N] [--clinics C]" >&2; exit 2 ;;
    esac
done

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target pgscribe >build.log 2>&1 || { tail -n 40 build.log; exit 1; }
BIN=$PWD/build/pgscribe

WORK=$(mktemp -d /tmp/pgscribe-demo.XXXXXX)
# a stack of its own, thrown away at the end: a fresh PostgreSQL cluster and
# a fresh Kafka log, whatever ran on this machine before
export PGS_STACK_DIR=$WORK/stack
mkdir -p "$PGS_STACK_DIR"
chmod 755 "$WORK" "$PGS_STACK_DIR"
WORKER_PID=
cleanup() {
    [ -n "$WORKER_PID" ] && kill -9 "$WORKER_PID" 2>/dev/null || true
    scripts/stack.sh down >/dev/null 2>&1 || true
    rm -rf "$PGS_STACK_DIR"
    echo "demo: stack stopped and removed; worker log kept in $WORK/worker.log"
}
trap cleanup EXIT
scripts/stack.sh up
set -a
. "$PGS_STACK_DIR/env"
set +a

DB=pgscribe_demo
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=postgres"
PGOPTIONS="-c client_min_messages=warning" psql -X -q -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d postgres \
    -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$BIN" migrate --dir schemas/sql --conninfo "$ADMIN"
export PGSCRIBE_PG_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker"

RUN=demo-$(date +%s)
cat >"$WORK/pgscribe.conf" <<CONF
[topic]
commands = $RUN.commands
commands_dlq = $RUN.commands.dlq
audit = $RUN.audit
audit_dlq = $RUN.audit.dlq
metrics = $RUN.metrics
[consumer]
group = $RUN
[metrics]
interval_ms = 2000
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
"$BIN" topics -c "$WORK/pgscribe.conf" >/dev/null

"$BIN" run -c "$WORK/pgscribe.conf" >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
until grep -q "assigned [0-9]* partition" "$WORK/worker.log"; do
    kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 20 "$WORK/worker.log"; exit 1; }
    sleep 0.2
done
echo "demo: worker running (pid $WORKER_PID); producing $COUNT commands over $CLINICS clinics"

t0=$(date +%s.%N)
"$BIN" produce -c "$WORK/pgscribe.conf" --count "$COUNT" --clinics "$CLINICS" --progress
# done when every command has been applied, counted as a duplicate or dead-lettered
sql="SELECT (SELECT count(*) FROM pgscribe.applied_commands)"
while :; do
    applied=$(psql -X -At -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$DB" -c "$sql")
    dead=$(grep -c "module=dlq msg=\"dead-lettering" "$WORK/worker.log" || true)
    [ $((applied + dead)) -ge "$COUNT" ] && break
    kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 20 "$WORK/worker.log"; exit 1; }
    sleep 0.2
done
t1=$(date +%s.%N)
kill -TERM "$WORKER_PID"
wait "$WORKER_PID" || true
WORKER_PID=

line=$(grep "msg=\"stopped:" "$WORK/worker.log" | tail -n 1)
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$line"; }
echo
echo "==================== pgscribe demo summary ===================="
printf "commands produced      %s over %s clinics\n" "$COUNT" "$CLINICS"
printf "applied                %s\n" "$(field applied)"
printf "duplicates             %s\n" "$(field duplicates)"
printf "dead-lettered          %s\n" "$(field dead_lettered)"
printf "throughput             %.0f commands/s (produce start → last commit)\n" \
    "$(python3 -c "print($COUNT / ($t1 - $t0))")"
printf "commit latency         p50 %s ms, p99 %s ms\n" "$(field commit_p50_ms)" "$(field commit_p99_ms)"
echo "last record on the metrics topic ($RUN.metrics):"
"$BIN" metrics -c "$WORK/pgscribe.conf" | tail -n 1
echo "================================================================"
