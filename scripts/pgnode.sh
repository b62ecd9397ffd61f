#!/usr/bin/env bash
# PostgreSQL 15 nodes on loopback for pgscribe's disaster-recovery drills: a
# primary, a streaming standby of it (pg_basebackup -R), promotion, a kill -9.
# Each node is one folder (data/, sock/, port, postgres.log), run as the
# postgres OS user; never touches the machine's own cluster or the stack's.
#
# usage: scripts/pgnode.sh init NODE PORT        initdb + start a primary
#        scripts/pgnode.sh standby NODE PRIMARY PORT
#                                                 pg_basebackup -R of PRIMARY, started
#        scripts/pgnode.sh start|stop|promote|kill NODE
#        scripts/pgnode.sh conninfo NODE [DB [USER]]   libpq conninfo of NODE
#        scripts/pgnode.sh free-port [FROM]     a TCP port free on 127.0.0.1
# NODE is a folder path (created; its parent must be reachable by postgres).
# PGNODE_CONF: extra postgresql.conf lines for init (archive_mode, ...).
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PG_USER=postgres

die() { echo "pgnode: $*" >&2; exit 1; }
as_pg() { (cd / && runuser -u "$PG_USER" -- "$@"); }
[[ -x $PGBIN/initdb ]] || die "$PGBIN/initdb missing: run scripts/deps.sh"

node_dir() {
    mkdir -p "$1"
    chown "$PG_USER:" "$1"
    as_pg test -w "$1" || die "$1 is not writable by $PG_USER (a 0700 parent?)"
    readlink -f "$1"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local p
    for ((p = ${1:-55432}; p < ${1:-55432} + 200; p++)); do
        port_free "$p" && { echo "$p"; return 0; }
    done
    die "no free port from ${1:-55432}"
}

# the settings every node gets: loopback only, its own socket folder
node_conf() { # NODE PORT
    cat >>"$1/data/postgresql.conf" <<CONF

# scripts/pgnode.sh
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$1/sock'
wal_level = replica
max_wal_senders = 8
hot_standby = on
wal_keep_size = 256MB
max_connections = 300
shared_buffers = 128MB
log_line_prefix = '%m [%p] '
CONF
    echo "$2" >"$1/port"
}

start() {
    as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 60 start >/dev/null ||
        die "start of $1 failed: $(tail -n 5 "$1/postgres.log")"
}

cmd=${1:-}
case $cmd in
init)
    [[ $# -eq 3 ]] || die "usage: init NODE PORT"
    n=$(node_dir "$2")
    [[ -f $n/data/PG_VERSION ]] && die "$n already holds a cluster"
    as_pg mkdir -p "$n/sock"
    as_pg "$PGBIN/initdb" -D "$n/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$n/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 5 "$n/initdb.log")"
    node_conf "$n" "$3"
    echo "host replication all 127.0.0.1/32 trust" >>"$n/data/pg_hba.conf"
    [[ -n ${PGNODE_CONF:-} ]] && printf '%s\n' "$PGNODE_CONF" >>"$n/data/postgresql.conf"
    start "$n"
    echo "pgnode: primary $n on 127.0.0.1:$3"
    ;;
standby)
    [[ $# -eq 4 ]] || die "usage: standby NODE PRIMARY PORT"
    n=$(node_dir "$2")
    p=$(readlink -f "$3")
    as_pg mkdir -p "$n/sock"
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$(cat "$p/port")" -U postgres -D "$n/data" \
        -R -X stream -c fast >"$n/basebackup.log" 2>&1 ||
        die "pg_basebackup failed: $(tail -n 5 "$n/basebackup.log")"
    node_conf "$n" "$4"
    start "$n"
    echo "pgnode: standby $n on 127.0.0.1:$4 of $p"
    ;;
start) start "$(readlink -f "$2")" ;;
stop) as_pg "$PGBIN/pg_ctl" -D "$(readlink -f "$2")/data" -m fast -w stop >/dev/null ;;
promote) as_pg "$PGBIN/pg_ctl" -D "$(readlink -f "$2")/data" -w -t 60 promote >/dev/null ;;
kill)
    # the postmaster and its children, SIGKILL, children first: nothing
    # flushes, nothing says goodbye to the clients or the standby
    n=$(readlink -f "$2")
    pm=$(head -n 1 "$n/data/postmaster.pid" 2>/dev/null) || die "$n is not running"
    kids=$(ps -o pid= --ppid "$pm" || true)
    kill -9 "$pm" $kids 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pm" 2>/dev/null || break; sleep 0.05; done
    ;;
conninfo)
    n=$(readlink -f "$2")
    echo "host=127.0.0.1 port=$(cat "$n/port") dbname=${3:-postgres} user=${4:-postgres}"
    ;;
free-port) free_port "${2:-55432}" ;;
*) die "usage: $0 init|standby|start|stop|promote|kill|conninfo|free-port ..." ;;
esac
