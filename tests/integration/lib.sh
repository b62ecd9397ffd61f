# Shared helpers of the integration tests: each test gets its own database,
# its own topics and consumer group, on the stack that ctest's stack.up
# fixture started (real PostgreSQL, real Kafka). Sourced, not run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
PGSCRIBE_BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
[ -f "$PGS_STACK_DIR/env" ] || { echo "FAIL: stack not up ($PGS_STACK_DIR/env missing)"; exit 1; }
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

# pgs_test_init NAME: fresh database pgs_t_NAME (+ _ref), migrated; config
# file $T_CONF with per-run topics and group; work folder $T_DIR.
pgs_test_init() {
    T_NAME=$1
    T_RUN="$T_NAME-$$-$(date +%s)"
    T_DIR=$(mktemp -d "/tmp/pgscribe-$T_NAME.XXXXXX")
    T_DB="pgs_t_${T_NAME}"
    T_REF_DB="pgs_t_${T_NAME}_ref"
    T_PIDS=()
    trap pgs_test_cleanup EXIT
    for db in "$T_DB" "$T_REF_DB"; do
        pgs_psql postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
        pgs_psql postgres -c "CREATE DATABASE $db" >/dev/null
        "$PGSCRIBE_BIN" migrate --dir "$REPO/schemas/sql" \
            --conninfo "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$db user=postgres" >/dev/null
    done
    export PGSCRIBE_PG_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgscribe_worker"
    T_CONF=$T_DIR/pgscribe.conf
    cat >"$T_CONF" <<CONF
[topic]
commands = $T_RUN.commands
commands_dlq = $T_RUN.commands.dlq
audit = $T_RUN.audit
audit_dlq = $T_RUN.audit.dlq
metrics = $T_RUN.metrics
traces = $T_RUN.traces
[consumer]
group = $T_RUN
[metrics]
interval_ms = 1000
${T_EXTRA_CONF:-}
[kafka]
bootstrap.servers = $PGSCRIBE_KAFKA
${T_EXTRA_KAFKA_CONF:-}
CONF
    "$PGSCRIBE_BIN" topics -c "$T_CONF" -p "${T_PARTITIONS:-12}" >/dev/null
}

pgs_test_cleanup() {
    local rc=$?
    for pid in "${T_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ] && [ -n "${T_DIR:-}" ]; then
        for f in "$T_DIR"/worker*.log; do
            [ -f "$f" ] || continue
            echo "=== last lines of $f" >&2
            tail -n 25 "$f" >&2
        done
    fi
    return $rc
}

pgs_psql() { # DB psql-args...
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$db" "$@"
}

pgs_scalar() { # DB SQL
    pgs_psql "$1" -At -c "$2"
}

# pgs_worker_start NAME [extra args]: starts `pgscribe run`, log in $T_DIR/worker-NAME.log,
# pid in W_PID; waits until it has been assigned partitions.
pgs_worker_start() {
    local name=$1
    shift
    local log=$T_DIR/worker-$name.log
    "${PGSCRIBE_WORKER_BIN:-$PGSCRIBE_BIN}" run -c "$T_CONF" "$@" >"$log" 2>&1 &
    W_PID=$!
    T_PIDS+=("$W_PID")
    local deadline=$((SECONDS + 60))
    until grep -q "assigned [0-9]* partition" "$log"; do
        kill -0 "$W_PID" 2>/dev/null || fail "worker $name exited at start: $(tail -n 5 "$log")"
        [ $SECONDS -lt $deadline ] || fail "worker $name got no partitions within 60 s"
        sleep 0.2
    done
}

# pgs_worker_stop PID: SIGTERM and wait for a clean exit (code 0).
pgs_worker_stop() {
    local pid=$1
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ $rc -eq 0 ] || fail "worker $pid exited with $rc after SIGTERM"
}

# pgs_wait_applied N [timeout]: until pgscribe.applied_commands holds N rows.
pgs_wait_applied() {
    local want=$1 timeout=${2:-300}
    local deadline=$((SECONDS + timeout)) got=0
    while :; do
        got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
        [ "$got" -ge "$want" ] && break
        [ $SECONDS -lt $deadline ] ||
            fail "only $got of $want commands applied within ${timeout}s" \
                "(the commands topic holds $(pgs_topic_count "$T_RUN.commands") messages)"
        sleep 0.5
    done
    [ "$got" -eq "$want" ] || fail "applied_commands holds $got rows, expected $want"
}

# pgs_worker_conns: connections the worker role holds to the test database.
pgs_worker_conns() {
    pgs_scalar "$T_DB" "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgscribe_worker' AND datname = '$T_DB'"
}

# pgs_topic_count TOPIC: how many messages TOPIC holds, read with kcat; tells
# a message the producer lost from one the worker lost.
pgs_topic_count() {
    kcat -b "$PGSCRIBE_KAFKA" -C -t "$1" -e -q -f '.\n' 2>/dev/null | wc -l
}

# pgs_metrics_sum FIELD: sum of FIELD over every WorkerMetrics record.
pgs_metrics_sum() {
    "$PGSCRIBE_BIN" metrics -c "$T_CONF" --timeout-ms 30000 >"$T_DIR/metrics.jsonl"
    python3 -c '
import json, sys
total = 0
for line in open(sys.argv[1]):
    total += json.loads(line)[sys.argv[2]]
print(total)' "$T_DIR/metrics.jsonl" "$1"
}

# pgs_reference FILE: applies the commands one by one to the reference DB.
pgs_reference() {
    python3 "$REPO/tests/integration/reference.py" "$1" |
        pgs_psql "$T_REF_DB" -v ON_ERROR_STOP=0 >/dev/null 2>"$T_DIR/reference.err" || true
}

pgs_compare_tables() {
    "$REPO/tests/integration/compare_tables.sh" \
        "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres" \
        "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_REF_DB user=postgres"
}

# --- chaos helpers (crash, database outage, rebalance tests) ---

# pgs_applied_now: rows in applied_commands, or -1 while PostgreSQL is down
# (a chaos test polls through outages, so a failed query is not fatal).
pgs_applied_now() {
    pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands" 2>/dev/null || echo -1
}

pgs_clock_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# pgs_pg ACTION: scripts/pg.sh start|stop|restart on the test's stack, output
# kept in $T_DIR/pg.log.
pgs_pg() {
    "$REPO/scripts/pg.sh" "$1" >>"$T_DIR/pg.log" 2>&1 || fail "pg.sh $1 failed: $(tail -n 5 "$T_DIR/pg.log")"
}

# pgs_pg_guard: after pgs_test_init, for tests that stop PostgreSQL: on any
# exit PostgreSQL is started again (other tests share the stack), then the
# usual cleanup runs; the exit status is kept.
pgs_pg_guard() {
    trap _pgs_pg_guard_exit EXIT
}
_pgs_pg_guard_exit() {
    local rc=$?
    set +e
    "$REPO/scripts/pg.sh" start >>"${T_DIR:-/tmp}/pg.log" 2>&1 ||
        echo "WARN: PostgreSQL could not be started again (pg.sh start failed)" >&2
    (exit $rc)
    pgs_test_cleanup
    exit $rc
}

# pgs_wait_growth SINCE_MS BASE [timeout]: waits until applied_commands holds
# more than BASE rows and prints the ms elapsed since SINCE_MS (pgs_clock_now_ms).
pgs_wait_growth() {
    local since=$1 base=$2 timeout=${3:-120}
    local deadline=$((SECONDS + timeout)) got
    while :; do
        got=$(pgs_applied_now)
        [ "$got" -gt "$base" ] && break
        [ $SECONDS -lt $deadline ] || fail "applied_commands stuck at $got rows for ${timeout}s"
        sleep 0.05
    done
    echo $(($(pgs_clock_now_ms) - since))
}

# pgs_rand_ms LO HI: a delay in [LO, HI] ms from bash's RANDOM (seed it with
# RANDOM=S for a reproducible run); in the calling shell, not a subshell, so
# the sequence advances: result in RAND_MS.
pgs_rand_ms() {
    RAND_MS=$(($1 + RANDOM % ($2 - $1 + 1)))
}

pgs_sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# pgs_dlq_count: dead letters on the commands DLQ topic.
pgs_dlq_count() {
    "$PGSCRIBE_BIN" replay -c "$T_CONF" --list --timeout-ms 30000 >"$T_DIR/dlq.jsonl" ||
        fail "replay --list failed"
    wc -l <"$T_DIR/dlq.jsonl"
}

# pgs_worker_launch NAME [extra args]: like pgs_worker_start, without waiting
# for partitions (a join takes seconds; a test may act meanwhile); W_PID set.
pgs_worker_launch() {
    local name=$1
    shift
    "${PGSCRIBE_WORKER_BIN:-$PGSCRIBE_BIN}" run -c "$T_CONF" "$@" >"$T_DIR/worker-$name.log" 2>&1 &
    W_PID=$!
    T_PIDS+=("$W_PID")
}

# pgs_worker_wait_assigned NAME PID [timeout]: until worker NAME has logged an
# assignment; fails if it exits first.
pgs_worker_wait_assigned() {
    local log=$T_DIR/worker-$1.log pid=$2 deadline=$((SECONDS + ${3:-60}))
    until grep -q "assigned [0-9]* partition" "$log"; do
        kill -0 "$pid" 2>/dev/null || fail "worker $1 exited: $(tail -n 5 "$log")"
        [ $SECONDS -lt $deadline ] || fail "worker $1 got no partitions within ${3:-60} s"
        sleep 0.2
    done
}

# pgs_forget_pid PID: drops a reaped process from T_PIDS so the exit cleanup
# never signals a recycled pid.
pgs_forget_pid() {
    local keep=() p
    for p in "${T_PIDS[@]:-}"; do
        [ -n "$p" ] && [ "$p" != "$1" ] && keep+=("$p")
    done
    T_PIDS=("${keep[@]:-}")
}

# pgs_mock_cluster_start BROKERS: starts `pgscribe broker`, librdkafka's mock
# cluster (the fault injector), with a control FIFO kept open on fd 9 (one
# writer for the whole test, so its reader sees one ordered stream of
# commands); points $T_CONF and $PGSCRIBE_KAFKA at it. Sets CTL, B_PID, MOCK.
pgs_mock_cluster_start() {
    CTL=$T_DIR/broker.ctl
    mkfifo "$CTL"
    "$PGSCRIBE_BIN" broker --brokers "$1" --control "$CTL" >"$T_DIR/broker.out" 2>"$T_DIR/broker.log" &
    B_PID=$!
    T_PIDS+=("$B_PID")
    local deadline=$((SECONDS + 20))
    until grep -q '^bootstrap=' "$T_DIR/broker.out"; do
        kill -0 "$B_PID" 2>/dev/null || fail "mock broker exited: $(cat "$T_DIR/broker.log")"
        [ $SECONDS -lt $deadline ] || fail "mock broker printed no bootstrap line within 20 s"
        sleep 0.1
    done
    MOCK=$(sed -n 's/^bootstrap=//p' "$T_DIR/broker.out")
    note "mock cluster at $MOCK"
    exec 9>"$CTL"
    local mock_conf=$T_DIR/pgscribe-mock.conf
    sed "s|^bootstrap.servers = .*|bootstrap.servers = $MOCK|" "$T_CONF" >"$mock_conf"
    grep -q "^bootstrap.servers = $MOCK\$" "$mock_conf" || fail "no bootstrap.servers line to replace"
    T_CONF=$mock_conf # the helpers here (worker, metrics) now talk to the mock
    export PGSCRIBE_KAFKA=$MOCK
}
