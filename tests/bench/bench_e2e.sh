#!/usr/bin/env bash
# pgscribe's end-to-end benchmark: produce N commands first, then time one
# worker applying them to a fresh database, and measure PostgreSQL's own limit
# (COPY, multi-row INSERT, multi-row INSERT + idempotency + audit) on the same
# rows, same cluster, in the same run. Prints figures; it is not a timed test.
#
# usage: tests/bench/bench_e2e.sh [--count N] [--clinics C] [--sessions S] [--workers W] [--keep]
#   --count N      commands produced (default 100000)
#   --clinics C    clinics the generated load spreads over (default 20)
#   --sessions S   parallel psql sessions of the multi-row baselines (default 8)
#   --workers W    workers in one consumer group on the same database (default 1)
#   --keep         keep the work folder (config, worker logs, row files)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR.
# Exit status: 0 when the run completed with consistent counts; 1 when the
# worker died, timed out or the counts do not add up; 2 on bad arguments.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
COUNT=100000
CLINICS=20
SESSIONS=8
WORKERS=1
KEEP=0
while [ $# -gt 0 ]; do
    case $1 in
    --count) COUNT=$2; shift 2 ;;
    --clinics) CLINICS=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--count N] [--clinics C] [--sessions S] [--workers W] [--keep]" >&2; exit 2 ;;
    esac
done
[[ $COUNT =~ ^[1-9][0-9]*$ && $CLINICS =~ ^[1-9][0-9]*$ && $SESSIONS =~ ^[1-9][0-9]*$ &&
    $WORKERS =~ ^[1-9][0-9]*$ ]] ||
    { echo "bench: --count, --clinics, --sessions and --workers take positive integers" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench: $BIN not built (cmake --build build --target pgscribe)" >&2; exit 1; }

# The stack is shared with other users: start it if it is down, never stop it.
"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

DB=pgs_bench
BASE_DB=pgs_bench_base
RUN=bench-$$-$(date +%s)
WORK=$(mktemp -d /tmp/pgscribe-bench.XXXXXX)
CONF=$WORK/pgscribe.conf
LOG=$WORK/worker.log
W_PIDS=()
POLL_PSQL=
TOP_PID=

note() { echo "bench: $*" >&2; }
wlog() { if [ "$1" = 1 ]; then echo "$LOG"; else echo "$LOG.$1"; fi; } # worker N's log
fail() { echo "bench: FAIL: $*" >&2; exit 1; }
psql_db() { # DB psql-args...
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$db" "$@"
}
scalar() { psql_db "$1" -At -c "$2"; }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

cleanup() {
    local rc=$?
    local pid
    for pid in "${W_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -n "$TOP_PID" ] && kill "$TOP_PID" 2>/dev/null || true
    if [ -n "$POLL_PSQL" ]; then
        kill "$POLL_PSQL" 2>/dev/null || true
        wait "$POLL_PSQL" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ] && [ -f "$LOG" ]; then
        echo "=== last lines of the (first) worker log" >&2
        tail -n 25 "$LOG" >&2
    fi
    for db in "$DB" "$BASE_DB"; do
        psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        echo "bench: work folder kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU accounting: cpu_ticks, pg_cpu_ticks, pg_backend_ticks, kafka_ticks, HZ.
. "$(dirname "${BASH_SOURCE[0]}")/cputicks.sh"

# 1. Fresh databases (the worker's and the baseline's), fresh topics.
note "fresh databases $DB and $BASE_DB, topics $RUN.*"
for db in "$DB" "$BASE_DB"; do
    psql_db postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    "$BIN" migrate --dir "$REPO/schemas/sql" \
        --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$db user=postgres" >/dev/null
done
# Per-statement figures come from pg_stat_statements when the cluster preloads
# it (scripts/pg.sh does); without it those lines are left out.
PGSS=0
if [ "$(scalar postgres "SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries'
        AND setting ~ 'pg_stat_statements'")" = 1 ]; then
    psql_db "$DB" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null && PGSS=1
fi
# Time in the plpgsql functions the statements call (the chain, the walls'
# checks, the resume-floor trigger): track_functions for this database only.
psql_db postgres -c "ALTER DATABASE $DB SET track_functions = 'pl'" >/dev/null
export PGSCRIBE_PG_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker"
cat >"$CONF" <<CONF
[topic]
commands = $RUN.commands
commands_dlq = $RUN.commands.dlq
audit = $RUN.audit
audit_dlq = $RUN.audit.dlq
metrics = $RUN.metrics
[consumer]
group = $RUN
[metrics]
interval_ms = 1000
${PGS_BENCH_CONF:-}
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
CONF
"$BIN" topics -c "$CONF" >/dev/null

# 2. Every command is on the topic before the worker starts, so the figure is
# the worker's apply throughput, not the producer's pace.
note "producing $COUNT commands over $CLINICS clinics"
t_p0=$(now)
"$BIN" produce -c "$CONF" --count "$COUNT" --clinics "$CLINICS" --emit "$WORK/commands.jsonl" \
    --no-progress >"$WORK/produce.log" 2>&1 || { tail -n 5 "$WORK/produce.log" >&2; fail "produce failed"; }
t_p1=$(now)
emitted=$(wc -l <"$WORK/commands.jsonl")
[ "$emitted" -eq "$COUNT" ] || fail "produce emitted $emitted commands, expected $COUNT"

# 3. The worker, from process start to the last command applied. One
# long-lived psql session answers the polls: a new connection every 50 ms
# would cost PostgreSQL more CPU than the count itself.
coproc POLL {
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -At -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$DB" 2>&1
}
POLL_PSQL=$POLL_PID
poll() { # SQL: first line of its answer; fails on no answer or a non-number
    local got
    echo "$1;" >&"${POLL[1]}"
    read -r -t 30 got <&"${POLL[0]}" || fail "no answer from the polling psql session"
    [[ $got =~ ^[0-9.]+$ ]] || fail "polling query failed: $got"
    echo "$got"
}
note "starting the worker"
[ $PGSS = 1 ] && scalar "$DB" "SELECT pg_stat_statements_reset()" >/dev/null
scalar "$DB" "SELECT pg_stat_reset()" >/dev/null
wal0=$(scalar postgres "SELECT wal_bytes FROM pg_stat_wal")
pg_t0=$(pg_cpu_ticks)
k_t0=$(kafka_ticks)
t0=$(now)
for w in $(seq 1 "$WORKERS"); do
    "$BIN" run -c "$CONF" >"$(wlog "$w")" 2>&1 &
    W_PIDS+=($!)
done
deadline=$((SECONDS + 120 + COUNT / 200))
sql="SELECT count(*) FROM pgscribe.applied_commands"
top_taken=0
while :; do
    applied=$(poll "$sql")
    dead=$(cat "$LOG"* | grep -c 'msg="dead-lettering' || true)
    [ $((applied + dead)) -ge "$COUNT" ] && break
    for pid in "${W_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "a worker died after $applied applied, $dead dead-lettered"
    done
    [ $SECONDS -lt $deadline ] || fail "only $applied applied + $dead dead-lettered of $COUNT in time"
    # Who uses the CPU, over one second half-way through applying: top's
    # second frame (its first one averages since each process started), in
    # the background so that the poll keeps its pace.
    if [ $top_taken = 0 ] && [ "$applied" -ge $((COUNT / 2)) ]; then
        (top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/ {n++} n == 2' >"$WORK/top.txt"; now >"$WORK/top.end") &
        TOP_PID=$!
        top_taken=1
    fi
    sleep 0.05
done
t1=$(now)
w_ticks=$(cpu_ticks "${W_PIDS[@]}")
w_hwm_kb=$(for pid in "${W_PIDS[@]}"; do cat "/proc/$pid/status"; done 2>/dev/null | awk '/^VmHWM:/ && $2 > m {m = $2} END {print m}')
pg_t1=$(pg_cpu_ticks)
pgw_ticks=$(pg_backend_ticks pgscribe_worker "$DB")
k_t1=$(kafka_ticks)
wal1=$(scalar postgres "SELECT wal_bytes FROM pg_stat_wal")
t_first=$(poll "SELECT extract(epoch FROM min(applied_at)) FROM pgscribe.applied_commands")
kill "$POLL_PSQL" 2>/dev/null || true
wait "$POLL_PSQL" 2>/dev/null || true
POLL_PSQL=

note "all commands done; stopping the worker"
kill -TERM "${W_PIDS[@]}"
for pid in "${W_PIDS[@]}"; do
    w_rc=0
    wait "$pid" || w_rc=$?
    [ $w_rc -eq 0 ] || fail "a worker exited with $w_rc after SIGTERM"
done
W_PIDS=()
# Each worker's stop line; counts add up, latencies are the highest worker's.
stops=()
for w in $(seq 1 "$WORKERS"); do
    line=$(grep 'msg="stopped:' "$(wlog "$w")" | tail -n 1)
    [ -n "$line" ] || fail "no stop line in the log of worker $w"
    stops+=("$line")
done
field_of() { sed -n "s/.*[ \"]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
field() { # NAME: summed over the workers, or the highest with --max
    local how=sum name=$1 v out=0
    if [ "$1" = --max ]; then how=max; name=$2; fi
    for line in "${stops[@]}"; do
        v=$(field_of "$name" "$line")
        out=$(calc "$([ $how = sum ] && echo "$out + ${v:-0}" || echo "max($out, ${v:-0})")")
    done
    echo "$out"
}
s_applied=$(field applied)
s_dead=$(field dead_lettered)
s_dups=$(field duplicates)

# Counts: every command applied or dead-lettered, each command id once.
read -r rows distinct < <(scalar "$DB" \
    "SELECT count(*), count(DISTINCT command_id) FROM pgscribe.applied_commands" | tr '|' ' ')
[ $((s_applied + s_dead)) -eq "$COUNT" ] ||
    fail "applied $s_applied + dead-lettered $s_dead != $COUNT"
[ "$rows" -eq "$s_applied" ] || fail "applied_commands holds $rows rows, worker says $s_applied"
[ "$rows" -eq "$distinct" ] || fail "applied_commands holds duplicate command ids"

"$BIN" metrics -c "$CONF" --timeout-ms 30000 >"$WORK/metrics.jsonl"
read -r m_txn m_applied < <(python3 -c '
import json, sys
txn = app = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    txn += r.get("transactions", 0)
    app += r.get("applied", 0)
print(txn, app)' "$WORK/metrics.jsonl")

# 4b. What the worker's statements cost PostgreSQL, by statement text: the
# command statements are those that record an id in applied_commands.
if [ $PGSS = 1 ]; then
    WSS="FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
         WHERE r.rolname = 'pgscribe_worker' AND s.dbid = (SELECT oid FROM pg_database WHERE datname = '$DB')"
    read -r ss_calls ss_shapes ss_ms ss_all_calls ss_all_ms < <(scalar "$DB" "SELECT
        coalesce(sum(calls) FILTER (WHERE query ~ 'pgscribe.applied_commands'), 0),
        count(*) FILTER (WHERE query ~ 'pgscribe.applied_commands'),
        round(coalesce(sum(total_exec_time) FILTER (WHERE query ~ 'pgscribe.applied_commands'), 0)),
        coalesce(sum(calls), 0), round(coalesce(sum(total_exec_time), 0)) $WSS" | tr '|' ' ')
    scalar "$DB" "SELECT round(total_exec_time)::bigint || ' ms, ' || calls || ' calls, ' ||
        round((total_exec_time / greatest(calls, 1))::numeric, 3) || ' ms each, ' ||
        round(100.0 * total_exec_time / greatest(sum(total_exec_time) OVER (), 1)) || '%: ' ||
        coalesce(CASE WHEN query ~ 'unnest' THEN 'multi-row ' ELSE 'single ' END ||
            substring(query from 'w AS \(\s*((INSERT INTO|UPDATE|DELETE FROM) \S+)') ||
            CASE WHEN query ~ 'DO UPDATE' THEN ' ON CONFLICT DO UPDATE' ELSE '' END,
            left(regexp_replace(query, '\s+', ' ', 'g'), 110))
        $WSS ORDER BY total_exec_time DESC LIMIT 5" >"$WORK/top_statements.txt"
fi
# The worker's backends have exited (SIGTERM above) and so flushed their
# function statistics: self time excludes the functions each one calls.
scalar "$DB" "SELECT round((sum(self_time) / 1000 * 100000 / $COUNT)::numeric, 2) || ' s self, ' ||
    round((sum(total_time) / 1000 * 100000 / $COUNT)::numeric, 2) || ' s total, ' ||
    round(sum(calls)::numeric / $COUNT, 2) || ' calls per command: ' || schemaname || '.' || funcname
    FROM pg_stat_user_functions GROUP BY schemaname, funcname
    ORDER BY sum(self_time) DESC LIMIT 6" >"$WORK/top_functions.txt"

# 5. PostgreSQL's own limit on the rows these commands produced.
note "baseline: loading the same rows into $BASE_DB (COPY, multi-row, multi-row + semantics)"
python3 "$REPO/tests/bench/pg_baseline.py" --host "$PGS_PG_HOST" --port "$PGS_PG_PORT" \
    --src-db "$DB" --dst-db "$BASE_DB" --work "$WORK/baseline" --sessions "$SESSIONS" \
    --batch 100 --pm-pid "$PM_PID" >"$WORK/baseline.txt" || fail "baseline failed"
base() { sed -n "s/^$1=//p" "$WORK/baseline.txt"; }

# 6. The table.
cores=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
pg_ver=$(scalar postgres "SHOW server_version" | awk '{print $1}')
pg_sync=$(scalar postgres "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
    WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers')")
kafka_ver=$(find "$REPO/deploy/kafka" -name 'kafka-clients-*.jar' 2>/dev/null |
    sed -n 's/.*kafka-clients-\([0-9.]*\)\.jar$/\1/p' | sort -V | tail -n 1)
elapsed=$(calc "$t1 - $t0")
active=$(calc "$t1 - $t_first")
per100k() { calc "'%.2f' % ($1 / $HZ * 100000 / $COUNT)"; }
pgscribe_rate=$(calc "round($COUNT / $elapsed)")
multi_sem=$(base semantics_rows_per_s)

echo
printf 'pgscribe benchmark — %s commands, %s clinics, %s cores (%s), PostgreSQL %s, Kafka %s\n' \
    "$COUNT" "$CLINICS" "$cores" "$cpu_model" "$pg_ver" "${kafka_ver:-?}"
printf '  (%s; %s, %s; baseline with %s psql sessions)\n' "$pg_sync" \
    "$([ "$WORKERS" = 1 ] && echo "one worker" || echo "$WORKERS workers in one group, 12 partitions")" \
    "$([ -n "${PGS_BENCH_CONF:-}" ] && echo "settings: ${PGS_BENCH_CONF//$'\n'/ }" || echo "default [apply] settings")" "$SESSIONS"
printf '  %-38s %8s commands/s   (commit p50 %s ms, p99 %s ms; %s cmds/txn)\n' \
    "pgscribe end-to-end" "$pgscribe_rate" "$(field --max commit_p50_ms)" "$(field --max commit_p99_ms)" \
    "$(calc "round($m_applied / max($m_txn, 1), 1)")"
printf '  %-38s %8s commands/s   (%.2f s from the first applied row; %.2f s with startup)\n' \
    "  without startup" "$(calc "round($COUNT / $active)")" "$active" "$elapsed"
printf '  %-38s %8s commands/s   (produced before the worker started, %.2f s)\n' \
    "producer" "$(calc "round($COUNT / ($t_p1 - $t_p0))")" "$(calc "$t_p1 - $t_p0")"
printf '  %-38s %s s per 100k commands; peak RSS %s MB\n' "worker CPU (all workers; RSS the highest)" \
    "$(per100k "$w_ticks")" "$(calc "round($w_hwm_kb / 1024)")"
printf '  %-38s %s s per 100k commands (worker'"'"'s backends %s s)\n' "postgres CPU" \
    "$(per100k "$((pg_t1 - pg_t0))")" "$(per100k "$pgw_ticks")"
base_rows=$(base rows)
printf '  %-38s %s s per 100k commands; baseline (+semantics) backends %s s per 100k rows\n' \
    "postgres backend CPU, same run" "$(per100k "$pgw_ticks")" \
    "$(calc "'%.2f' % ($(base semantics_backend_cpu_s) * 100000 / $base_rows)")"
printf '  %-38s %s bytes per command; baseline (+semantics) %s bytes per row\n' "WAL" \
    "$(calc "round(($wal1 - $wal0) / $COUNT)")" \
    "$(calc "round($(base semantics_wal_bytes) / $base_rows)")"
if [ $PGSS = 1 ]; then
    printf '  %-38s %s per command (%s distinct shapes; all statements incl. BEGIN/COMMIT/setup %s per command)\n' \
        "command statements" "$(calc "round($ss_calls / $COUNT, 3)")" "$ss_shapes" \
        "$(calc "round($ss_all_calls / $COUNT, 2)")"
    printf '  %-38s %s s per 100k commands (all the worker'"'"'s statements %s s)\n' \
        "  their execution time (pgss)" "$(calc "'%.2f' % ($ss_ms / 1000 * 100000 / $COUNT)")" \
        "$(calc "'%.2f' % ($ss_all_ms / 1000 * 100000 / $COUNT)")"
    echo "  top 5 statements by total execution time:"
    sed 's/^/    /' "$WORK/top_statements.txt"
fi
if [ -s "$WORK/top_functions.txt" ]; then
    echo "  top plpgsql functions, per 100k commands (track_functions = pl):"
    sed 's/^/    /' "$WORK/top_functions.txt"
fi
printf '  %-38s %s s per 100k commands\n' "kafka broker CPU" "$(per100k "$((k_t1 - k_t0))")"
printf '  %-38s %s transactions; applied %s, duplicates %s, dead-lettered %s\n' "counts" \
    "$m_txn" "$s_applied" "$s_dups" "$s_dead"
printf '  %-38s %8s rows/s       (%s rows of the 4 clinic tables, one session)\n' \
    "PostgreSQL COPY" "$(base copy_rows_per_s)" "$(base rows)"
printf '  %-38s %8s rows/s       (100 rows/statement, 1 txn each)\n' \
    "PostgreSQL multi-row INSERT" "$(base multirow_rows_per_s)"
printf '  %-38s %8s rows/s       (+1 applied_commands, +1 chained audit.events row per row)\n' \
    "multi-row + idempotency + audit" "$multi_sem"
printf '  %-38s %s\n' "ratio pgscribe / multi-row+semantics" \
    "$(calc "round($pgscribe_rate / $multi_sem, 2)")"
if [ -n "$TOP_PID" ]; then
    wait "$TOP_PID" 2>/dev/null || true
    TOP_PID=
fi
# Only a frame that ended before the last command counts (short runs end first).
if [ -s "$WORK/top.txt" ] && [ "$(calc "int($(cat "$WORK/top.end") <= $t1)")" = 1 ]; then
    printf '  %-38s %s\n' "CPU by process name, 1 s mid-apply" "$(awk '
        /^%Cpu/ { sub(/^%Cpu\(s\): */, ""); cpu = $0 }
        $1 ~ /^[0-9]+$/ && NF >= 12 { pct[$12] += $9; n[$12]++ }
        END {
            for (c in pct) if (pct[c] >= 1) printf "%s %.0f%% (%d), ", c, pct[c], n[c]
            printf "[%s]", cpu
        }' "$WORK/top.txt")"
fi
exit 0
