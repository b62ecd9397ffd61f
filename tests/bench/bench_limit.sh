#!/usr/bin/env bash
# The adaptive in-flight limit against pinned limits on one load: the load is
# produced once, then applied by one worker per setting, each time to a fresh
# database and with a consumer group of its own: the default (adaptive, at
# most apply.max_in_flight) and `adaptive_in_flight = false` with each pinned
# value. Rounds repeat the whole sweep so that drift on a shared machine
# falls on every setting alike. Prints each run's commands/s and commit
# p50/p99, the mean per setting, and adaptive ÷ best pinned. Not a timed test.
#
# usage: tests/bench/bench_limit.sh [--count N] [--clinics C] [--pinned "2 4 8"]
#                                   [--rounds R] [--keep]
#   --count N      commands produced (default 100000)
#   --clinics C    clinics the load spreads over (default 20)
#   --pinned LIST  the pinned limits tried (default "2 3 4 6 8")
#   --rounds R     sweeps (default 2)
#   --keep         keep the work folder (configs, worker logs)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR.
# Exit status: 0 when every run applied every command; 1 when a worker died,
# timed out or dead-lettered; 2 on bad arguments.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
COUNT=100000
CLINICS=20
PINNED="2 3 4 6 8"
ROUNDS=2
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    --pinned) PINNED=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--count N] [--clinics C] [--pinned LIST] [--rounds R] [--keep]" >&2; exit 2 ;;
    esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $CLINICS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ &&
    $PINNED =~ ^[1-9][0-9]*( [1-9][0-9]*)*$ ]] ||
    { echo "bench_limit: --count, --clinics, --rounds and --pinned take positive integers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench_limit: $BIN not built" >&2; exit 1; }

"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

RUN=bench-limit-$$-$(date +%s)
DB=pgs_bench_limit
WORK=$(mktemp -d /tmp/pgscribe-bench-limit.XXXXXX)
W_PID=
note() { echo "bench_limit: $*" >&2; }
fail() { echo "bench_limit: FAIL: $*" >&2; exit 1; }
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
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then echo "bench_limit: work folder kept in $WORK" >&2; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

conf() { # NAME GROUP APPLY-LINES
    cat >"$WORK/$1.conf" <<CONF
[pg]
conninfo = host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker
[topic]
commands = $RUN.commands
commands_dlq = $RUN.commands.dlq
audit = $RUN.audit
audit_dlq = $RUN.audit.dlq
metrics = $RUN.metrics
traces = $RUN.traces
[consumer]
group = $2
[apply]
$3
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
}

conf produce "$RUN-produce" ""
"$BIN" topics -c "$WORK/produce.conf" -p 12 >/dev/null
note "producing $COUNT commands over $CLINICS clinics"
"$BIN" produce -c "$WORK/produce.conf" --count "$COUNT" --clinics "$CLINICS" --seed 7 \
    --no-progress >/dev/null 2>&1 || fail "produce"

# run NAME APPLY-LINES: sets RATE, P50 and P99
run() {
    local name=$1 t0 t1 got=0 deadline stop
    conf "$name" "$RUN-$name" "$2"
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
    "$BIN" migrate --dir "$REPO/schemas/sql" \
        --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=postgres" >/dev/null
    t0=$(date +%s.%N)
    env -u PGSCRIBE_PG_CONNINFO "$BIN" run -c "$WORK/$name.conf" >"$WORK/$name.log" 2>&1 &
    W_PID=$!
    deadline=$((SECONDS + 120 + COUNT / 200))
    while [ "$got" -lt "$COUNT" ]; do
        kill -0 "$W_PID" 2>/dev/null || fail "the $name worker died: $(tail -n 3 "$WORK/$name.log")"
        [ $SECONDS -lt $deadline ] || fail "the $name run applied only $got of $COUNT in time"
        sleep 0.1
        got=$(psql_db "$DB" -At -c "SELECT count(*) FROM pgscribe.applied_commands")
    done
    t1=$(date +%s.%N)
    kill -TERM "$W_PID"
    wait "$W_PID" || fail "the $name worker did not stop cleanly"
    W_PID=
    stop=$(grep 'msg="stopped:' "$WORK/$name.log" | tail -n 1)
    grep -q "dead_lettered=0" <<<"$stop" || fail "the $name run dead-lettered: $stop"
    sv() { sed -n "s/.*[ \"]$1=\([0-9.]*\).*/\1/p" <<<"$stop"; }
    RATE=$(python3 -c "print('%.0f' % ($COUNT / ($t1 - $t0)))")
    P50=$(sv commit_p50_ms)
    P99=$(sv commit_p99_ms)
}

settings=(adaptive)
for p in $PINNED; do settings+=("pinned-$p"); done
declare -A sum
for s in "${settings[@]}"; do sum[$s]=0; done
printf 'bench_limit: %s commands, %s clinics, %s cores (%s); commands/s from worker start to the last row\n' \
    "$COUNT" "$CLINICS" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
for r in $(seq 1 "$ROUNDS"); do
    for s in "${settings[@]}"; do
        if [ "$s" = adaptive ]; then
            lines=""
        else
            lines=$'adaptive_in_flight = false\nmax_in_flight = '"${s#pinned-}"
        fi
        run "$s-$r" "$lines"
        printf '  round %s  %-10s %7s commands/s   commit p50 %s ms, p99 %s ms\n' "$r" "$s" "$RATE" "$P50" "$P99"
        sum[$s]=$((sum[$s] + RATE))
    done
done
best=0
best_name=
for s in "${settings[@]}"; do
    mean=$((sum[$s] / ROUNDS))
    printf '  mean       %-10s %7s commands/s\n' "$s" "$mean"
    if [ "$s" != adaptive ] && [ "$mean" -gt "$best" ]; then
        best=$mean
        best_name=$s
    fi
done
printf '  adaptive / best pinned (%s): %s\n' "$best_name" \
    "$(python3 -c "print('%.3f' % ($((sum[adaptive] / ROUNDS)) / $best))")"
