#!/usr/bin/env bash
# Field encryption's cost end to end: one generated load is produced once,
# then applied by one worker twice, each time to a fresh database and with a
# consumer group of its own: with the PHI columns in clear and no keyring,
# then with `pgscribe keys protect` and a keyring (every PHI value sealed at
# intake). Prints commands/s of both runs and their ratio. Not a timed test.
#
# usage: tests/bench/bench_encrypt.sh [--count N] [--clinics C] [--keep]
#   --count N      commands produced (default 50000)
#   --clinics C    clinics the load spreads over (default 20)
#   --keep         keep the work folder (configs, worker logs)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR.
# Exit status: 0 when both runs applied every command; 1 when a worker died,
# timed out or dead-lettered; 2 on bad arguments.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
COUNT=50000
CLINICS=20
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--count N] [--clinics C] [--keep]" >&2; exit 2 ;;
    esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $CLINICS =~ ^[1-9][0-9]*$ ]] ||
    { echo "bench: --count and --clinics take positive integers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench: $BIN not built" >&2; exit 1; }

"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

RUN=bench-enc-$$-$(date +%s)
WORK=$(mktemp -d /tmp/pgscribe-bench-enc.XXXXXX)
W_PID=
note() { echo "bench: $*" >&2; }
fail() { echo "bench: FAIL: $*" >&2; exit 1; }
psql_db() {
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$db" "$@"
}
cleanup() {
    local rc=$?
    if [ -n "$W_PID" ]; then
        kill -9 "$W_PID" 2>/dev/null || true
        wait "$W_PID" 2>/dev/null || true
    fi
    for db in pgs_bench_clear pgs_bench_sealed; do
        psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then echo "bench: work folder kept in $WORK" >&2; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf() { # NAME DB KEYRING
    cat >"$WORK/$1.conf" <<CONF
[pg]
conninfo = host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$2 user=pgscribe_worker
[topic]
commands = $RUN.commands
commands_dlq = $RUN.$1.dlq
audit = $RUN.audit
audit_dlq = $RUN.audit.dlq
metrics = $RUN.metrics
traces = $RUN.traces
[consumer]
group = $RUN-$1
[crypto]
keyring = $3
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
}

KR=$WORK/keyring
"$BIN" keys rotate --keyring "$KR" >/dev/null 2>&1 || fail "keys rotate"
conf clear pgs_bench_clear ""
conf sealed pgs_bench_sealed "$KR"
"$BIN" topics -c "$WORK/clear.conf" -p 12 >/dev/null
note "producing $COUNT commands over $CLINICS clinics"
"$BIN" produce -c "$WORK/clear.conf" --count "$COUNT" --clinics "$CLINICS" --seed 7 --no-progress \
    >/dev/null 2>&1 || fail "produce"

run() { # NAME DB
    local name=$1 db=$2 t0 t1 got=0 deadline
    psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql_db postgres -c "CREATE DATABASE $db" >/dev/null
    "$BIN" migrate --dir "$REPO/schemas/sql" \
        --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$db user=postgres" >/dev/null
    if [ "$name" = sealed ]; then
        "$BIN" keys protect --keyring "$KR" \
            --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$db user=postgres" >/dev/null 2>&1 ||
            fail "keys protect"
    fi
    t0=$(date +%s.%N)
    env -u PGSCRIBE_PG_CONNINFO "$BIN" run -c "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
    W_PID=$!
    deadline=$((SECONDS + 600))
    while [ "$got" -lt "$COUNT" ]; do
        kill -0 "$W_PID" 2>/dev/null || fail "the $name worker died: $(tail -n 3 "$WORK/$name.log")"
        [ $SECONDS -lt $deadline ] || fail "the $name run applied only $got of $COUNT in 600 s"
        sleep 0.2
        got=$(psql_db "$db" -At -c "SELECT count(*) FROM pgscribe.applied_commands")
    done
    t1=$(date +%s.%N)
    kill -TERM "$W_PID"
    wait "$W_PID" || fail "the $name worker did not stop cleanly"
    W_PID=
    grep -q "dead_lettered=0" <(grep "stopped:" "$WORK/$name.log") ||
        fail "the $name run dead-lettered: $(grep stopped: "$WORK/$name.log")"
    python3 -c "print('%.0f' % ($COUNT / ($t1 - $t0)))"
}

clear=$(run clear pgs_bench_clear)
note "clear:  $clear commands/s"
sealed=$(run sealed pgs_bench_sealed)
note "sealed: $sealed commands/s"
echo "bench_encrypt: $COUNT commands, $CLINICS clinics: clear $clear/s, encrypted $sealed/s," \
    "ratio encrypted/clear $(python3 -c "print('%.3f' % ($sealed / $clear))")"
