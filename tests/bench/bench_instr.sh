#!/usr/bin/env bash
# The worker's own instructions per command: one worker under valgrind's
# callgrind applies a fixed generated load (produced before it starts) to a
# fresh database, twice: a small load and a large one of the same generator.
# Instructions per command is the difference of the two runs' totals over the
# difference of their counts, so the start (catalog, connections, group join)
# and the stop cancel out. Prints it, the large run's total per command, and
# the large run's top functions by their own instructions. Not a ctest test.
#
# usage: tests/bench/bench_instr.sh [--count N] [--clinics C] [--top K] [--keep]
#   --count N    commands of the large run (default 10000; the small one is N/5)
#   --clinics C  clinics of the generated load (default 20)
#   --top K      functions listed (default 15)
#   --keep       keep the work folder (callgrind.out.*, worker logs)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR,
#      PGS_BENCH_CONF (config lines added to the worker's file)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
COUNT=10000
CLINICS=20
TOP=15
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--count N] [--clinics C] [--top K] [--keep]" >&2; exit 2 ;;
    esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $COUNT -ge 50 && $CLINICS =~ ^[1-9][0-9]*$ && $TOP =~ ^[1-9][0-9]*$ ]] ||
    { echo "bench_instr: --count (>= 50), --clinics and --top take positive integers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench_instr: $BIN not built" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "bench_instr: valgrind missing (scripts/deps.sh)" >&2; exit 1; }

"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

DB=pgs_bench_instr
WORK=$(mktemp -d /tmp/pgscribe-instr.XXXXXX)
W_PID=

note() { echo "bench_instr: $*" >&2; }
fail() { echo "bench_instr: FAIL: $*" >&2; exit 1; }
psql_db() {
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$db" "$@"
}
scalar() { psql_db "$1" -At -c "$2"; }

cleanup() {
    local rc=$?
    if [ -n "$W_PID" ]; then
        kill -9 "$W_PID" 2>/dev/null || true
        wait "$W_PID" 2>/dev/null || true
    fi
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        echo "bench_instr: work folder kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run N TAG: applies N generated commands under callgrind; prints total Ir.
run() {
    local n=$1 tag=$2 run_id conf log out applied deadline
    run_id=instr-$$-$tag-$(date +%s)
    conf=$WORK/$tag.conf
    log=$WORK/$tag.log
    out=$WORK/callgrind.out.$tag
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
    "$BIN" migrate --dir "$REPO/schemas/sql" \
        --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=postgres" >/dev/null
    cat >"$conf" <<CONF
[topic]
commands = $run_id.commands
commands_dlq = $run_id.commands.dlq
audit = $run_id.audit
audit_dlq = $run_id.audit.dlq
metrics = $run_id.metrics
[consumer]
group = $run_id
${PGS_BENCH_CONF:-}
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
    "$BIN" topics -c "$conf" >/dev/null
    "$BIN" produce -c "$conf" --count "$n" --clinics "$CLINICS" --seed 7 --no-progress \
        >"$WORK/$tag.produce.log" 2>&1 || fail "produce failed"
    PGSCRIBE_PG_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker" \
        valgrind --tool=callgrind --callgrind-out-file="$out" --trace-children=no \
        "$BIN" run -c "$conf" >"$log" 2>&1 &
    W_PID=$!
    deadline=$((SECONDS + 300 + n / 20))
    while :; do
        applied=$(scalar "$DB" "SELECT count(*) FROM pgscribe.applied_commands")
        [ "$applied" -ge "$n" ] && break
        kill -0 "$W_PID" 2>/dev/null || fail "worker died after $applied of $n ($log)"
        [ $SECONDS -lt $deadline ] || fail "only $applied of $n applied in time"
        sleep 0.5
    done
    kill -TERM "$W_PID"
    wait "$W_PID" || fail "worker exited with $? after SIGTERM"
    W_PID=
    grep -q 'msg="stopped:' "$log" || fail "no stop line in $log"
    callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) *(100.0%) *PROGRAM TOTALS.*/\1/p' |
        tr -d ','
}

small=$((COUNT / 5))
note "small run: $small commands under callgrind"
ir_small=$(run "$small" small)
note "large run: $COUNT commands under callgrind"
ir_large=$(run "$COUNT" large)
[ -n "$ir_small" ] && [ -n "$ir_large" ] || fail "no instruction totals from callgrind_annotate"

echo
printf 'pgscribe worker instructions (callgrind), %s and %s commands over %s clinics, seed 7\n' \
    "$small" "$COUNT" "$CLINICS"
printf '  %-34s %s\n' "instructions per command" \
    "$(python3 -c "print(round(($ir_large - $ir_small) / ($COUNT - $small)))")"
printf '  %-34s %s (%s in all, start and stop included)\n' "large run per command" \
    "$(python3 -c "print(round($ir_large / $COUNT))")" "$ir_large"
echo "  top $TOP functions of the large run by own instructions (per command):"
callgrind_annotate --threshold=100 "$WORK/callgrind.out.large" 2>/dev/null |
    awk -v top="$TOP" -v n="$COUNT" '
        /PROGRAM TOTALS/ { started = 1; next }
        started && /^ *[0-9,]+ +\([ 0-9.]+%\) +[^ ]/ {
            ir = $1; gsub(",", "", ir)
            pct = $2 " " $3; sub(/^\(/, "", pct)
            $1 = ""; $2 = ""; if ($3 ~ /%\)$/) $3 = ""
            fn = $0; sub(/^ +/, "", fn); sub(/ \[[^]]*\]$/, "", fn)
            printf "    %8d  %s\n", ir / n, fn
            if (++k >= top) exit
        }'
