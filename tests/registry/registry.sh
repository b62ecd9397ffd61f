#!/usr/bin/env bash
# A real schema registry for pgscribe's integration tests: Apicurio Registry
# (in-memory storage, Confluent-compatible API at /apis/ccompat/v6) on
# 127.0.0.1, built by Maven from tests/registry/pom.xml into
# tests/registry/target (once; later starts take seconds).
#
# usage: tests/registry/registry.sh build|start|stop|status|url
# state: $PGS_REGISTRY_DIR (default $PGS_STACK_DIR/registry, PGS_STACK_DIR
#        defaulting to <repo>/.stack): pid, port, log.
# storage: in memory (lost at a stop), or with PGS_REGISTRY_STORAGE=file the
#        registry's SQL storage on an embedded H2 file in that folder, kept
#        across a stop and start (what a test of a registry outage needs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STACK=${PGS_STACK_DIR:-$REPO/.stack}
RDIR=${PGS_REGISTRY_DIR:-$STACK/registry}
JAR=$HERE/target/pgscribe-schema-registry-1-runner.jar
READY_DEADLINE_S=${PGS_REGISTRY_READY_TIMEOUT:-180}

die() { echo "registry: $*" >&2; exit 1; }

mkdir -p "$RDIR"
RDIR=$(cd "$RDIR" && pwd)
PID_FILE=$RDIR/registry.pid
PORT_FILE=$RDIR/port
LOG=$RDIR/registry.log

cmd_build() {
    [[ -f $JAR && $JAR -nt $HERE/pom.xml ]] && return 0
    command -v mvn >/dev/null || die "mvn missing: run scripts/deps.sh"
    echo "registry: building Apicurio Registry with Maven (first time only)" >&2
    mvn -q -B -f "$HERE/pom.xml" package -DskipTests >"$RDIR/mvn.log" 2>&1 ||
        { tail -n 30 "$RDIR/mvn.log" >&2; die "maven could not build the registry"; }
    [[ -f $JAR ]] || die "maven ran but $JAR is missing"
}

port_taken() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

running_pid() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    [[ -n $pid ]] && grep -q 'pgscribe-schema-registry' "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

url() { echo "http://127.0.0.1:$(cat "$PORT_FILE")/apis/ccompat/v6"; }

cmd_start() {
    local pid port
    if pid=$(running_pid); then
        echo "registry: running (pid $pid), $(url)"
        return 0
    fi
    cmd_build
    # the last port again when it is free, so a restarted registry keeps its URL
    port=$(cat "$PORT_FILE" 2>/dev/null || echo 18081)
    while port_taken "$port"; do port=$((port + 1)); done
    echo "$port" >"$PORT_FILE"
    local storage=()
    [[ ${PGS_REGISTRY_STORAGE:-memory} == file ]] &&
        storage=(env "REGISTRY_DATASOURCE_URL=jdbc:h2:file:$RDIR/h2db")
    setsid "${storage[@]}" java -Xmx384m -XX:+UseSerialGC -Djava.awt.headless=true \
        -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
        -jar "$JAR" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local start=$SECONDS
    until curl -sf -m 2 "$(url)/subjects" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG" >&2; die "registry exited during startup"; }
        ((SECONDS - start < READY_DEADLINE_S)) || { cmd_stop >&2; die "not ready after ${READY_DEADLINE_S}s"; }
        sleep 0.3
    done
    echo "registry: running (pid $pid) in $((SECONDS - start))s, $(url)"
}

cmd_stop() {
    local pid waited=0
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        echo "registry: not running"
        return 0
    fi
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        ((waited < 100)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
        sleep 0.2
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
    echo "registry: stopped"
}

case "${1:-}" in
build) cmd_build ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) if pid=$(running_pid); then echo "registry: running (pid $pid), $(url)"; else echo "registry: stopped"; exit 3; fi ;;
url) url ;;
*) echo "usage: $0 build|start|stop|status|url" >&2; exit 2 ;;
esac
