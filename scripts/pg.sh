#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for pgscribe's demo and tests: initdb in the
# stack folder, Unix socket only, run as the postgres OS user. Never touches the
# machine's own cluster.
#
# usage: scripts/pg.sh start|stop|restart|status|psql [psql args...]
# state: $PGS_STACK_DIR (default <repo>/.stack)/pg, env lines in $PGS_STACK_DIR/env
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${PGS_STACK_DIR:-$REPO/.stack}
PGBIN=/usr/lib/postgresql/15/bin
PG_USER=postgres
READY_DEADLINE_S=60

die() { echo "pg: $*" >&2; exit 1; }

[[ -x $PGBIN/initdb ]] || die "$PGBIN/initdb missing: run scripts/deps.sh"
mkdir -p "$STACK"
STACK=$(cd "$STACK" && pwd)

# From / so a cwd that postgres cannot read does not trouble pg_ctl.
as_pg() { (cd / && runuser -u "$PG_USER" -- "$@"); }

# The server runs as postgres, which must be able to reach the data folder. A
# stack under a private home (/root is 0700) is not reachable, so the cluster
# then lives in /var/tmp and the stack folder holds a symlink to it.
pg_dir() {
    local link=$STACK/pg
    if [[ ! -e $link ]]; then
        mkdir -p "$link"
        chown "$PG_USER:" "$link"
        if ! as_pg test -w "$link"; then
            rmdir "$link"
            local alt
            alt=/var/tmp/pgscribe-pg-$(printf '%s' "$STACK" | sha256sum | cut -c1-12)
            mkdir -p "$alt"
            ln -s "$alt" "$link"
        fi
    fi
    readlink -f "$link"
}

PGDIR=$(pg_dir)
DATA=$PGDIR/data
SOCK=$PGDIR/sock
PORT_FILE=$PGDIR/port
LOG=$PGDIR/postgres.log
ENV_FILE=$STACK/env

# Unix socket paths are limited to 107 bytes; a deep checkout gets a short one.
if ((${#SOCK} > 90)); then
    SOCK=/tmp/pgscribe-sock-$(printf '%s' "$STACK" | sha256sum | cut -c1-12)
fi

port_taken() {
    local p=$1
    [[ -e $SOCK/.s.PGSQL.$p || -e $SOCK/.s.PGSQL.$p.lock ]] && return 0
    [[ -e /tmp/.s.PGSQL.$p.lock || -e /var/run/postgresql/.s.PGSQL.$p.lock ]] && return 0
    grep -q "\.s\.PGSQL\.$p\$" /proc/net/unix 2>/dev/null
}

pick_port() {
    local p
    for ((p = 54320; p < 54420; p++)); do
        port_taken "$p" || { echo "$p"; return 0; }
    done
    die "no free port in 54320..54419"
}

is_running() { [[ -f $DATA/PG_VERSION ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

current_port() { cat "$PORT_FILE" 2>/dev/null || true; }

# Rewrites only this script's lines in the shared env file (kafka.sh owns others).
write_env() {
    local port=$1 tmp
    tmp=$(mktemp "$STACK/.env.XXXXXX")
    if [[ -f $ENV_FILE ]]; then
        grep -v -E '^(PGS_PG_HOST|PGS_PG_PORT|PGSCRIBE_PG_ADMIN_CONNINFO|PGSCRIBE_PG_CONNINFO|PGS_PG_REF_CONNINFO)=' \
            "$ENV_FILE" >"$tmp" || true
    fi
    cat >>"$tmp" <<EOF
PGS_PG_HOST=$SOCK
PGS_PG_PORT=$port
PGSCRIBE_PG_ADMIN_CONNINFO="host=$SOCK port=$port dbname=pgscribe user=postgres"
PGSCRIBE_PG_CONNINFO="host=$SOCK port=$port dbname=pgscribe user=pgscribe_worker"
PGS_PG_REF_CONNINFO="host=$SOCK port=$port dbname=pgscribe_ref user=postgres"
EOF
    chmod 644 "$tmp"
    mv "$tmp" "$ENV_FILE"
}

wait_ready() {
    local port=$1 deadline=$((SECONDS + READY_DEADLINE_S))
    until "$PGBIN/pg_isready" -q -h "$SOCK" -p "$port" -U "$PG_USER" -d postgres; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG" >&2 || true
            die "not ready after ${READY_DEADLINE_S}s (log: $LOG)"
        fi
        sleep 0.2
    done
}

ensure_db() {
    local port=$1 db=$2
    local have
    have=$("$PGBIN/psql" -h "$SOCK" -p "$port" -U "$PG_USER" -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'")
    [[ $have == 1 ]] || "$PGBIN/createdb" -h "$SOCK" -p "$port" -U "$PG_USER" "$db"
}

cmd_start() {
    local port
    mkdir -p "$SOCK"
    chown "$PG_USER:" "$PGDIR" "$SOCK"
    if is_running; then
        port=$(current_port)
    else
        if [[ ! -f $DATA/PG_VERSION ]]; then
            rm -rf "$DATA"
            as_pg "$PGBIN/initdb" -D "$DATA" -U "$PG_USER" --auth=trust \
                --encoding=UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 ||
                { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
        fi
        port=$(current_port)
        if [[ -z $port ]] || port_taken "$port"; then
            port=$(pick_port)
        fi
        echo "$port" >"$PORT_FILE"
        # Settings go on the command line so a changed port or socket folder
        # needs no edit of postgresql.conf.
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$READY_DEADLINE_S" start -o \
            "-c listen_addresses='' -c unix_socket_directories='$SOCK' -p $port \
             -c max_connections=300 -c shared_buffers=256MB \
             -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=10000" >/dev/null ||
            { tail -n 30 "$LOG" >&2 || true; die "pg_ctl start failed"; }
    fi
    wait_ready "$port"
    ensure_db "$port" pgscribe
    ensure_db "$port" pgscribe_ref
    write_env "$port"
    echo "postgres: running, socket $SOCK port $port (databases pgscribe, pgscribe_ref)"
}

cmd_stop() {
    if is_running; then
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        echo "postgres: stopped"
    else
        echo "postgres: not running"
    fi
}

cmd_status() {
    if is_running; then
        echo "postgres: running, socket $SOCK port $(current_port)"
    else
        echo "postgres: stopped"
        return 3
    fi
}

cmd_psql() {
    is_running || die "not running (scripts/pg.sh start)"
    exec "$PGBIN/psql" -h "$SOCK" -p "$(current_port)" -U "$PG_USER" -d pgscribe "$@"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_stop && cmd_start ;;
status) cmd_status ;;
psql) shift && cmd_psql "$@" ;;
*) echo "usage: $0 start|stop|restart|status|psql [args]" >&2; exit 2 ;;
esac
