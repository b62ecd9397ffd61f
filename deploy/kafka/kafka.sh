#!/usr/bin/env bash
# Real Apache Kafka broker for pgscribe's local stack: one KRaft node (broker +
# controller) on 127.0.0.1, jars fetched by Maven from deploy/kafka/pom.xml.
#
# usage: deploy/kafka/kafka.sh start|stop|restart|status|topics|check
# state: $PGS_STACK_DIR (default <repo>/.stack)/kafka; appends
#        PGSCRIBE_KAFKA=127.0.0.1:<port> to $PGS_STACK_DIR/env
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STACK=${PGS_STACK_DIR:-$REPO/.stack}
LIBS=$HERE/target/kafka-libs
READY_DEADLINE_S=${PGS_KAFKA_READY_TIMEOUT:-180}
STOP_GRACE_S=20
TOPICS=(clinic.commands clinic.audit clinic.commands.dlq clinic.audit.dlq pgscribe.metrics)

die() { echo "kafka: $*" >&2; exit 1; }

mkdir -p "$STACK/kafka"
STACK=$(cd "$STACK" && pwd)
KDIR=$STACK/kafka
DATA=$KDIR/data
PROPS=$KDIR/server.properties
LOG=$KDIR/kafka.log
PID_FILE=$KDIR/kafka.pid
PORTS_FILE=$KDIR/ports
ENV_FILE=$STACK/env

kafka_version() { sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$HERE/pom.xml"; }

# The jars are fetched once per pom version; a stale folder from another
# version is replaced rather than mixed into the classpath.
ensure_libs() {
    local ver
    ver=$(kafka_version)
    [[ -f $LIBS/kafka_2.13-$ver.jar ]] && return 0
    command -v mvn >/dev/null || die "mvn missing: run scripts/deps.sh"
    echo "kafka: fetching Kafka $ver jars with Maven"
    rm -rf "$LIBS"
    mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$LIBS" -DincludeScope=runtime >"$KDIR/mvn.log" 2>&1 ||
        { tail -n 30 "$KDIR/mvn.log" >&2; die "maven could not fetch the broker jars"; }
    [[ -f $LIBS/kafka_2.13-$ver.jar ]] || die "maven ran but kafka_2.13-$ver.jar is missing"
}

# The classpath wildcard is java's, not the shell's: it stays quoted.
JAVA=(java -Xmx512m -Xms512m -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$HERE/log4j2.yaml" "-Dkafka.logs.dir=$KDIR"
    -cp "$LIBS/*")

# A port is taken when something listens on it (IPv4 or IPv6, any address).
port_taken() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port_from() {
    local p
    for ((p = $1; p < $1 + 200; p++)); do
        port_taken "$p" || { echo "$p"; return 0; }
    done
    die "no free port from $1"
}

running_pid() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    [[ -n $pid ]] && grep -q 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

broker_port() { awk '{print $1}' "$PORTS_FILE" 2>/dev/null; }

write_env() {
    local tmp
    tmp=$(mktemp "$STACK/.env.XXXXXX")
    [[ -f $ENV_FILE ]] && { grep -v '^PGSCRIBE_KAFKA=' "$ENV_FILE" >"$tmp" || true; }
    echo "PGSCRIBE_KAFKA=127.0.0.1:$1" >>"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$ENV_FILE"
}

# Ready = our process logged its start, the port accepts AND a metadata
# request lists the broker: a bound socket alone answers before the controller
# has elected itself, and the log line tells our broker from another one that
# may hold the port.
wait_ready() {
    local pid=$1 port=$2 log_from=${3:-0} start=$SECONDS
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG" >&2 || true
            die "broker exited during startup (log: $LOG)"
        fi
        if tail -c +$((log_from + 1)) "$LOG" 2>/dev/null | grep -q 'Kafka Server started' &&
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            kcat -b "127.0.0.1:$port" -L -m 5 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$port"; then
            echo "kafka: ready in $((SECONDS - start))s"
            return 0
        fi
        if ((SECONDS - start >= READY_DEADLINE_S)); then
            tail -n 30 "$LOG" >&2 || true
            echo "kafka: not ready after ${READY_DEADLINE_S}s (log: $LOG)" >&2
            return 1
        fi
        sleep 0.5
    done
}

cmd_start() {
    local pid port cport
    command -v kcat >/dev/null || die "kcat missing: run scripts/deps.sh"
    if pid=$(running_pid); then
        port=$(broker_port)
        wait_ready "$pid" "$port" "$(cat "$KDIR/log_offset" 2>/dev/null || echo 0)" >/dev/null || exit 1
        write_env "$port"
        echo "kafka: running (pid $pid), bootstrap 127.0.0.1:$port"
        return 0
    fi
    command -v java >/dev/null || die "java missing: run scripts/deps.sh"
    ensure_libs

    # Keep last run's ports when they are still free, so clients' env stays valid.
    [[ -f $PORTS_FILE ]] && read -r port cport <"$PORTS_FILE"
    if [[ -z ${port:-} ]] || port_taken "$port"; then port=$(free_port_from 9092); fi
    if [[ -z ${cport:-} || $cport == "$port" ]] || port_taken "$cport"; then
        cport=$(free_port_from $((port + 1)))
    fi
    echo "$port $cport" >"$PORTS_FILE"
    sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@LOG_DIRS@|$DATA|g" \
        "$HERE/server.properties.in" >"$PROPS"

    # Formatted once: meta.properties holds the cluster id from then on.
    if [[ ! -f $DATA/meta.properties ]]; then
        local uuid
        uuid=$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>>"$KDIR/format.log" | tail -n 1)
        [[ $uuid =~ ^[A-Za-z0-9_-]{22}$ ]] || { tail -n 30 "$KDIR/format.log" >&2; die "random-uuid failed"; }
        "${JAVA[@]}" kafka.tools.StorageTool format -t "$uuid" -c "$PROPS" >>"$KDIR/format.log" 2>&1 ||
            { tail -n 30 "$KDIR/format.log" >&2; die "storage format failed"; }
    fi

    # setsid: the broker outlives this script and the terminal or job that ran it.
    local log_from
    log_from=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
    echo "$log_from" >"$KDIR/log_offset"
    setsid "${JAVA[@]}" kafka.Kafka "$PROPS" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    # A broker that never became ready is not left behind half-started.
    wait_ready "$pid" "$port" "$log_from" || { cmd_stop >&2; exit 1; }
    write_env "$port"
    echo "kafka: running (pid $pid), bootstrap 127.0.0.1:$port, Kafka $(kafka_version) KRaft"
}

cmd_stop() {
    local pid waited=0
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        echo "kafka: not running"
        return 0
    fi
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= STOP_GRACE_S * 5)); then
            echo "kafka: no exit ${STOP_GRACE_S}s after SIGTERM, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
    echo "kafka: stopped"
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        echo "kafka: running (pid $pid), bootstrap 127.0.0.1:$(broker_port)"
    else
        echo "kafka: stopped"
        return 3
    fi
}

# Kafka creates a topic with num.partitions=12 the first time a client names
# it (auto.create.topics.enable=true). kcat cannot create a topic with a given
# partition count, so this asks for each default topic's metadata with
# auto-creation allowed and then shows the partition counts.
cmd_topics() {
    local pid port t n deadline
    pid=$(running_pid) || die "not running (kafka.sh start)"
    port=$(broker_port)
    for t in "${TOPICS[@]}"; do
        deadline=$((SECONDS + 30))
        while :; do
            n=$(kcat -b "127.0.0.1:$port" -X allow.auto.create.topics=true -L -t "$t" -m 5 2>/dev/null |
                sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -n 1)
            [[ -n $n && $n -gt 0 ]] && break
            ((SECONDS < deadline)) || die "topic $t was not created"
            sleep 0.5
        done
        echo "kafka: topic $t partitions=$n"
    done
}

# End-to-end check with kcat (Debian's kcat links the same librdkafka as
# pgscribe): 1000 keyed messages in, consumed back by a cooperative-sticky
# consumer group, offsets committed (a second pass of the group reads nothing).
cmd_check() {
    local port topic group out n split again
    running_pid >/dev/null || die "not running (kafka.sh start)"
    port=$(broker_port)
    topic=pgscribe.check.$$.$RANDOM
    group=$topic.group
    out=$(mktemp)
    seq 1 1000 | awk '{ printf "key%d:value-%d\n", $1 % 37, $1 }' |
        kcat -b "127.0.0.1:$port" -P -t "$topic" -K: -X allow.auto.create.topics=true
    kcat -b "127.0.0.1:$port" -G "$group" -X partition.assignment.strategy=cooperative-sticky \
        -X auto.offset.reset=earliest -X auto.commit.interval.ms=100 -f '%k %p %s\n' \
        -e "$topic" >"$out" 2>/dev/null
    n=$(sort -u "$out" | wc -l)
    split=$(awk '{ print $1, $2 }' "$out" | sort -u | awk '{ print $1 }' | uniq -d | wc -l)
    again=$(kcat -b "127.0.0.1:$port" -G "$group" -X partition.assignment.strategy=cooperative-sticky \
        -X auto.offset.reset=earliest -e "$topic" 2>/dev/null | wc -l)
    rm -f "$out"
    [[ $n -eq 1000 ]] || die "check: consumed $n distinct messages of 1000"
    [[ $split -eq 0 ]] || die "check: $split keys landed in more than one partition"
    [[ $again -eq 0 ]] || die "check: group re-read $again messages: offsets not committed"
    echo "kafka: check ok (1000 keyed messages produced, consumed by group $group, offsets committed)"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
topics) cmd_topics ;;
check) cmd_check ;;
*) echo "usage: $0 start|stop|restart|status|topics|check" >&2; exit 2 ;;
esac
