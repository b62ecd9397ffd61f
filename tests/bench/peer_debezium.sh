#!/usr/bin/env bash
# Benchmark peer: the Debezium JDBC sink connector on Apache Kafka Connect
# (standalone), fed the rows of pgscribe's benchmark load, on the same stack.
# The same generated commands as tests/bench/bench_e2e.sh, one Kafka record
# per command (the row as it stands after the command, JSON with schema, key =
# primary key, a tombstone for a DELETE), all on the topics before Connect
# starts; timed from Connect's start to the last row in place. Prints figures;
# it is not a timed test, and it is off by default (not in ctest, not in CI).
#
# usage: tests/bench/peer_debezium.sh [--count N] [--clinics C] [--tasks T]
#            [--batch B] [--poll P] [--per-record] [--pgscribe] [--keep]
#   --count N      commands generated (default 100000)
#   --clinics C    clinics the generated load spreads over (default 20)
#   --tasks T      connector tasks, and partitions of each topic (default 2)
#   --batch B      the sink's batch.size (default 2000)
#   --poll P       the consumer's max.poll.records (default B)
#   --per-record   one statement per record (no reduction buffer, no UNNEST),
#                  to compare with the fastest configuration (the default)
#   --pgscribe     run tests/bench/bench_e2e.sh first on the same commands and
#                  print pgscribe's rate beside the peer's
#   --keep         keep the work folder (records, configs, Connect's log)
# env: PGSCRIBE_BIN (default <repo>/build/pgscribe), PGS_STACK_DIR,
#      PGS_PEER_CACHE (jars; default ~/.cache/pgscribe-peer),
#      PGS_PEER_DEBEZIUM_VERSION (default 3.5.0.Final),
#      PGS_PEER_CONNECT_VERSION (default 4.1.1), PGS_PEER_HEAP (default 1g).
# Exit status: 0 when every row is in place as expected; 1 when the run
# broke (download, Connect died, rows missing after the timeout); 2 on bad
# arguments.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
PGS_STACK_DIR=${PGS_STACK_DIR:-$REPO/.stack}
CACHE=${PGS_PEER_CACHE:-$HOME/.cache/pgscribe-peer}
DBZ_VER=${PGS_PEER_DEBEZIUM_VERSION:-3.5.0.Final}
CONNECT_VER=${PGS_PEER_CONNECT_VERSION:-4.1.1}
HEAP=${PGS_PEER_HEAP:-1g}
COUNT=100000
CLINICS=20
TASKS=2
BATCH=2000
MAX_POLL=
PER_RECORD=0
WITH_PGSCRIBE=0
KEEP=0
usage() {
    echo "usage: $0 [--count N] [--clinics C] [--tasks T] [--batch B] [--poll P] [--per-record] [--pgscribe] [--keep]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --count) [ $# -ge 2 ] || usage; COUNT=$2; shift 2 ;;
    --clinics) [ $# -ge 2 ] || usage; CLINICS=$2; shift 2 ;;
    --tasks) [ $# -ge 2 ] || usage; TASKS=$2; shift 2 ;;
    --batch) [ $# -ge 2 ] || usage; BATCH=$2; shift 2 ;;
    --poll) [ $# -ge 2 ] || usage; MAX_POLL=$2; shift 2 ;;
    --per-record) PER_RECORD=1; shift ;;
    --pgscribe) WITH_PGSCRIBE=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
    esac
done
MAX_POLL=${MAX_POLL:-$BATCH}
for v in "$COUNT" "$CLINICS" "$TASKS" "$BATCH" "$MAX_POLL"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] ||
        { echo "peer: --count, --clinics, --tasks, --batch and --poll take positive integers" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "peer: $BIN not built (cmake --build build --target pgscribe)" >&2; exit 1; }
for tool in java mvn kcat psql python3; do
    command -v "$tool" >/dev/null || { echo "peer: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done

# The stack is shared with other users: start it if it is down, never stop it.
"$REPO/scripts/stack.sh" status >/dev/null 2>&1 || "$REPO/scripts/stack.sh" up >/dev/null
set -a
# shellcheck disable=SC1091
. "$PGS_STACK_DIR/env"
set +a

DB=pgs_peer
ROLE=pgs_peer_sink
TABLES=(patients appointments encounters prescriptions)
RUN=peer-$$-$(date +%s)
WORK=$(mktemp -d /tmp/pgscribe-peer.XXXXXX)
LOG=$WORK/connect.log
C_PID=
POLL_PSQL=

note() { echo "peer: $*" >&2; }
fail() { echo "peer: FAIL: $*" >&2; exit 1; }
psql_db() { # DB psql-args...
    local db=$1
    shift
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$db" "$@"
}
scalar() { psql_db "$1" -At -c "$2"; }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

stop_connect() {
    local waited=0
    [ -n "$C_PID" ] || return 0
    kill -TERM "$C_PID" 2>/dev/null || true
    while kill -0 "$C_PID" 2>/dev/null; do
        if [ $waited -ge 100 ]; then
            kill -KILL "$C_PID" 2>/dev/null || true
            break
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    wait "$C_PID" 2>/dev/null || true
    C_PID=
}

cleanup() {
    local rc=$?
    if [ -n "$POLL_PSQL" ]; then
        kill "$POLL_PSQL" 2>/dev/null || true
        wait "$POLL_PSQL" 2>/dev/null || true
    fi
    stop_connect
    if [ $rc -ne 0 ] && [ -f "$LOG" ]; then
        if grep -q -E '] ERROR |^Caused by' "$LOG"; then
            echo "=== first errors in Connect's log ($LOG)" >&2
            grep -E '] ERROR |^Caused by' "$LOG" | head -n 20 >&2
        else
            echo "=== last lines of Connect's log ($LOG)" >&2
            tail -n 30 "$LOG" >&2
        fi
    fi
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
        -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        echo "peer: work folder kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT TERM

# CPU accounting: cpu_ticks, pg_cpu_ticks, pg_backend_ticks, kafka_ticks, HZ.
. "$(dirname "${BASH_SOURCE[0]}")/cputicks.sh"

# 1. The jars, once per version: Kafka Connect (tests/bench/peer/pom.xml) and
# the Debezium JDBC sink's plugin tar.gz, both from Maven Central.
LIBS=$CACHE/connect-$CONNECT_VER
PLUGINS=$CACHE/debezium-connector-jdbc-$DBZ_VER
mkdir -p "$CACHE"
if [ ! -f "$LIBS/connect-runtime-$CONNECT_VER.jar" ]; then
    note "fetching Kafka Connect $CONNECT_VER with Maven into $LIBS"
    rm -rf "$LIBS"
    mvn -q -B -f "$HERE/peer/pom.xml" "-Dconnect.version=$CONNECT_VER" dependency:copy-dependencies \
        -DoutputDirectory="$LIBS" -DincludeScope=runtime >"$WORK/mvn.log" 2>&1 ||
        { tail -n 30 "$WORK/mvn.log" >&2; rm -rf "$LIBS"; fail "maven could not fetch Kafka Connect"; }
fi
if [ ! -f "$PLUGINS/debezium-connector-jdbc/debezium-connector-jdbc-$DBZ_VER.jar" ]; then
    note "fetching the Debezium JDBC sink $DBZ_VER plugin with Maven into $PLUGINS"
    rm -rf "$PLUGINS" "$PLUGINS.tmp"
    mkdir -p "$PLUGINS.tmp"
    (cd "$WORK" && mvn -q -B dependency:copy \
        "-Dartifact=io.debezium:debezium-connector-jdbc:$DBZ_VER:tar.gz:plugin" \
        -DoutputDirectory="$PLUGINS.tmp") >>"$WORK/mvn.log" 2>&1 ||
        { tail -n 30 "$WORK/mvn.log" >&2; rm -rf "$PLUGINS.tmp"; fail "maven could not fetch the Debezium plugin"; }
    tar -xzf "$PLUGINS.tmp/debezium-connector-jdbc-$DBZ_VER-plugin.tar.gz" -C "$PLUGINS.tmp"
    rm -f "$PLUGINS.tmp/debezium-connector-jdbc-$DBZ_VER-plugin.tar.gz"
    mv "$PLUGINS.tmp" "$PLUGINS"
fi
[ -f "$PLUGINS/debezium-connector-jdbc/debezium-connector-jdbc-$DBZ_VER.jar" ] ||
    fail "no debezium-connector-jdbc-$DBZ_VER.jar in $PLUGINS"
# The classpath wildcard is java's, not the shell's: it stays quoted.
JAVA=(java -XX:+UseG1GC -Djava.awt.headless=true -Duser.timezone=UTC
    "-Dlog4j2.configurationFile=$HERE/peer/log4j2.properties" -cp "$LIBS/*")

# pgscribe on the same commands (the generator is deterministic: same count,
# clinics and seed), right before the peer, for a comparison under the same
# conditions.
pgs_rate=
if [ $WITH_PGSCRIBE = 1 ]; then
    note "pgscribe's benchmark first: tests/bench/bench_e2e.sh --count $COUNT --clinics $CLINICS"
    PGSCRIBE_BIN=$BIN "$HERE/bench_e2e.sh" --count "$COUNT" --clinics "$CLINICS" | tee "$WORK/bench_e2e.txt" ||
        fail "pgscribe's benchmark failed"
    pgs_rate=$(sed -n 's/^  pgscribe end-to-end  *\([0-9]*\) commands.*/\1/p' "$WORK/bench_e2e.txt")
    pgs_active=$(sed -n 's/^    without startup  *\([0-9]*\) commands.*/\1/p' "$WORK/bench_e2e.txt")
    [ -n "$pgs_rate" ] && [ -n "$pgs_active" ] || fail "no pgscribe rate in bench_e2e.sh's output"
fi

# 2. A fresh database with plain copies of the clinic tables, the sink's role.
note "fresh database $DB, topics $RUN.*"
psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $ROLE" \
    -c "CREATE ROLE $ROLE LOGIN" -c "CREATE DATABASE $DB" >/dev/null
psql_db "$DB" -f "$HERE/peer/schema.sql" >/dev/null

# 3. The commands: the generator's, as bench_e2e.sh produces them (to a topic
# of their own that nothing reads), then one record per command.
note "generating $COUNT commands over $CLINICS clinics"
"$BIN" produce -b "$PGSCRIBE_KAFKA" -t "$RUN.commands" --encoding json --count "$COUNT" \
    --clinics "$CLINICS" --emit "$WORK/commands.jsonl" --no-progress >"$WORK/produce.log" 2>&1 ||
    { tail -n 5 "$WORK/produce.log" >&2; fail "pgscribe produce failed"; }
[ "$(wc -l <"$WORK/commands.jsonl")" -eq "$COUNT" ] || fail "produce emitted a wrong number of commands"
python3 "$HERE/peer/feed.py" --commands "$WORK/commands.jsonl" --out "$WORK" ||
    fail "the feed could not be built"
read -r _ records <"$WORK/expected.txt"
[ "$records" -eq "$COUNT" ] || fail "the feed holds $records records, expected $COUNT"

# 4. The topics, TASKS partitions each, and every record on them before
# Connect starts: the figure is the sink's, not the producer's.
topics=()
for t in "${TABLES[@]}"; do
    topics+=("$RUN.$t")
    "${JAVA[@]}" -Xmx256m org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$PGSCRIBE_KAFKA" --create --topic "$RUN.$t" \
        --partitions "$TASKS" --replication-factor 1 >>"$WORK/topics.log" 2>&1 ||
        { tail -n 5 "$WORK/topics.log" >&2; fail "topic $RUN.$t not created"; }
done
note "producing $COUNT records (JSON with schema) to ${#TABLES[@]} topics of $TASKS partitions"
t_p0=$(now)
for t in "${TABLES[@]}"; do
    kcat -P -b "$PGSCRIBE_KAFKA" -t "$RUN.$t" -K '\t' -Z -X linger.ms=20 \
        -X queue.buffering.max.messages=1000000 -l "$WORK/$t.records" 2>>"$WORK/kcat.log" ||
        { tail -n 5 "$WORK/kcat.log" >&2; fail "kcat could not produce to $RUN.$t"; }
done
t_p1=$(now)
for t in "${TABLES[@]}"; do
    q=()
    for ((p = 0; p < TASKS; p++)); do q+=(-t "$RUN.$t:$p:-1"); done
    n=$(kcat -b "$PGSCRIBE_KAFKA" -Q "${q[@]}" 2>>"$WORK/kcat.log" | awk '{ s += $NF } END { print s + 0 }') ||
        fail "could not read the end offsets of $RUN.$t"
    want=$(wc -l <"$WORK/$t.records")
    [ "$n" -eq "$want" ] || fail "$RUN.$t holds $n records, expected $want"
done

# 5. Connect: standalone worker, one connector. The fastest honest
# configuration (tests/bench/README.md): upsert by the record key, deletes
# from tombstones, the reduction buffer (the last record of a key in a batch)
# and PostgreSQL UNNEST statements (one statement per table and batch).
if [ $PER_RECORD = 1 ]; then REDUCE=false; UNNEST=false; else REDUCE=true; UNNEST=true; fi
SOCK=$PGS_PG_HOST/.s.PGSQL.$PGS_PG_PORT
cat >"$WORK/worker.properties" <<EOF
bootstrap.servers=$PGSCRIBE_KAFKA
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$WORK/connect.offsets
offset.flush.interval.ms=10000
plugin.path=$PLUGINS
plugin.discovery=service_load
listeners=http://127.0.0.1:0
connector.client.config.override.policy=All
EOF
cat >"$WORK/connector.properties" <<EOF
name=$RUN
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
tasks.max=$TASKS
topics=$(IFS=,; echo "${topics[*]}")
connection.url=jdbc:postgresql://localhost:$PGS_PG_PORT/$DB?socketFactory=org.newsclub.net.unix.AFUNIXSocketFactory\$FactoryArg&socketFactoryArg=$SOCK&sslmode=disable
connection.username=$ROLE
connection.password=
insert.mode=upsert
delete.enabled=true
primary.key.mode=record_key
schema.evolution=none
use.time.zone=UTC
batch.size=$BATCH
use.reduction.buffer=$REDUCE
dialect.postgres.unnest.insert.enabled=$UNNEST
transforms=route
transforms.route.type=org.apache.kafka.connect.transforms.RegexRouter
transforms.route.regex=.*\\\\.([a-z]+)\$
transforms.route.replacement=\$1
collection.name.format=clinic.\${topic}
consumer.override.max.poll.records=$MAX_POLL
consumer.override.max.partition.fetch.bytes=16777216
consumer.override.fetch.max.bytes=67108864
consumer.override.auto.offset.reset=earliest
EOF

coproc POLL {
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -At -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$DB" 2>&1
}
POLL_PSQL=$POLL_PID
poll() { # SQL: first line of its answer
    local got
    echo "$1;" >&"${POLL[1]}"
    read -r -t 30 got <&"${POLL[0]}" || fail "no answer from the polling psql session"
    echo "$got"
}
# Row count and sum of versions per table: equal to the expected ones only
# once the last record of every key is in place.
state_sql="SELECT concat_ws(' '"
for t in "${TABLES[@]}"; do
    state_sql+=", (SELECT count(*) || ' ' || coalesce(sum(version), 0) FROM clinic.$t)"
done
state_sql+=")"
want_state=$(awk 'NR > 1 { printf "%s%s %s", (NR > 2 ? " " : ""), $2, $3 }' "$WORK/expected.txt")

note "starting Kafka Connect $CONNECT_VER with the Debezium JDBC sink $DBZ_VER ($TASKS tasks, batch.size $BATCH, max.poll.records $MAX_POLL$([ $PER_RECORD = 1 ] && echo ', per record'))"
xact_sql="SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'"
x0=$(scalar postgres "$xact_sql")
polls=0
pg_t0=$(pg_cpu_ticks)
k_t0=$(kafka_ticks)
t0=$(now)
"${JAVA[@]}" "-Xms$HEAP" "-Xmx$HEAP" org.apache.kafka.connect.cli.ConnectStandalone "$WORK/worker.properties" \
    "$WORK/connector.properties" >"$LOG" 2>&1 &
C_PID=$!
deadline=$((SECONDS + 180 + COUNT / 100))
t_first=
c_first=
while :; do
    state=$(poll "$state_sql")
    polls=$((polls + 1))
    [ "$state" = "$want_state" ] && break
    kill -0 "$C_PID" 2>/dev/null || fail "Connect exited (rows now: $state; expected: $want_state)"
    if grep -q -m 1 'Task threw an uncaught and unrecoverable exception\|Failed to start connector\|Failed to create job' "$LOG"; then
        fail "the connector or a task failed (rows now: $state)"
    fi
    [ $SECONDS -lt $deadline ] || fail "rows not in place in time (now: $state; expected: $want_state)"
    if [ -z "$t_first" ] && [ "$state" != "0 0 0 0 0 0 0 0" ]; then
        t_first=$(now)
        c_first=$(cpu_ticks "$C_PID")
    fi
    sleep 0.05
done
t1=$(now)
c_ticks=$(cpu_ticks "$C_PID")
c_hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$C_PID/status")
pg_t1=$(pg_cpu_ticks)
pgs_ticks=$(pg_backend_ticks "$ROLE" "$DB")
k_t1=$(kafka_ticks)
[ -n "$t_first" ] || { t_first=$t1; c_first=$c_ticks; }
t_created=$(poll "SELECT extract(epoch FROM least($(printf 'min_c%s, ' 1 2 3)min_c4)) FROM
    (SELECT (SELECT min(created_at) FROM clinic.patients) min_c1,
            (SELECT min(created_at) FROM clinic.appointments) min_c2,
            (SELECT min(created_at) FROM clinic.encounters) min_c3,
            (SELECT min(created_at) FROM clinic.prescriptions) min_c4) m")
kill "$POLL_PSQL" 2>/dev/null || true
wait "$POLL_PSQL" 2>/dev/null || true
POLL_PSQL=

note "all rows in place; stopping Connect"
stop_connect

# 6. The rows: per table the id:version list matches the replay's, and what
# the sink wrote (the statistics are flushed once its backends have exited).
for t in "${TABLES[@]}"; do
    got=$(scalar "$DB" "SELECT md5(coalesce(string_agg(id::text || ':' || version, ',' ORDER BY id), ''))
        FROM clinic.$t")
    want=$(awk -v t="$t" '$1 == t { print $4 }' "$WORK/expected.txt")
    [ "$got" = "$want" ] || fail "clinic.$t: the rows' versions differ from the replay's"
done
sleep 1
# Committed transactions in the database, less the polls' (one each, and
# the one that read min(created_at)) and the md5 checks' (one per table).
x1=$(scalar postgres "$xact_sql")
xacts=$((x1 - x0 - polls - 1 - ${#TABLES[@]}))
read -r n_ins n_upd n_del < <(scalar "$DB" "SELECT sum(n_tup_ins), sum(n_tup_upd), sum(n_tup_del)
    FROM pg_stat_user_tables WHERE schemaname = 'clinic'" | tr '|' ' ')
rows_final=$(awk 'NR > 1 { s += $2 } END { print s }' "$WORK/expected.txt")

# 7. The figures.
cores=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
pg_ver=$(scalar postgres "SHOW server_version" | awk '{print $1}')
elapsed=$(calc "$t1 - $t0")
active=$(calc "$t1 - min($t_first, $t_created)")
per100k() { calc "'%.2f' % ($1 / $HZ * 100000 / $COUNT)"; }
echo
printf 'benchmark peer — Debezium JDBC sink %s on Kafka Connect %s (standalone), %s commands, %s clinics,\n' \
    "$DBZ_VER" "$CONNECT_VER" "$COUNT" "$CLINICS"
printf '  %s cores (%s), PostgreSQL %s; %s tasks, %s partitions per topic, batch.size %s, max.poll.records %s,\n' \
    "$cores" "$cpu_model" "$pg_ver" "$TASKS" "$TASKS" "$BATCH" "$MAX_POLL"
printf '  insert.mode=upsert, use.reduction.buffer=%s, dialect.postgres.unnest.insert.enabled=%s, heap %s\n' \
    "$REDUCE" "$UNNEST" "$HEAP"
printf '  %-38s %8s records/s    (%.2f s from Connect'"'"'s start to the last row)\n' \
    "sink end-to-end" "$(calc "round($COUNT / $elapsed)")" "$elapsed"
printf '  %-38s %8s records/s    (%.2f s from the first row written)\n' \
    "  without startup" "$(calc "round($COUNT / $active)")" "$active"
printf '  %-38s %8s records/s    (produced before Connect started, %.2f s)\n' \
    "producer (kcat)" "$(calc "round($COUNT / ($t_p1 - $t_p0))")" "$(calc "$t_p1 - $t_p0")"
printf '  %-38s %s s per 100k records (%s s from the first row on); peak RSS %s MB\n' \
    "Connect JVM CPU" "$(per100k "$c_ticks")" "$(per100k "$((c_ticks - c_first))")" \
    "$(calc "round($c_hwm_kb / 1024)")"
printf '  %-38s %s s per 100k records (the sink'"'"'s backends %s s)\n' "postgres CPU" \
    "$(per100k "$((pg_t1 - pg_t0))")" "$(per100k "$pgs_ticks")"
printf '  %-38s %s s per 100k records\n' "kafka broker CPU" "$(per100k "$((k_t1 - k_t0))")"
printf '  %-38s %s records; rows written: %s inserted, %s updated, %s deleted; %s rows at the end\n' \
    "counts" "$COUNT" "$n_ins" "$n_upd" "$n_del" "$rows_final"
printf '  %-38s about %s (%s rows written per transaction)\n' "sink transactions" "$xacts" \
    "$(calc "round(($n_ins + $n_upd + $n_del) / max($xacts, 1), 1)")"
if [ -n "$pgs_rate" ]; then
    printf '  %-38s %8s commands/s   (without startup %s /s; bench_e2e.sh just before)\n' \
        "pgscribe, same commands" "$pgs_rate" "$pgs_active"
    printf '  %-38s %s (without startup %s)\n' "ratio pgscribe / peer" \
        "$(calc "round($pgs_rate * $elapsed / $COUNT, 2)")" "$(calc "round($pgs_active * $active / $COUNT, 2)")"
fi
exit 0
