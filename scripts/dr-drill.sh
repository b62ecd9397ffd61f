#!/usr/bin/env bash
# Restore drill (pgBackRest point-in-time recovery), also integration.pitr_drill.
#
# Its own PostgreSQL cluster (scripts/pgnode.sh, archive_mode=on, WAL archived
# by pgbackrest into a stanza of the drill's folder), a full backup, then
# 30 000 commands and 10 000 audit events through real workers and the
# stack's Kafka, each in two parts. When about half of each is committed, the
# time is recorded as the restore target; the second parts go out and the
# load finishes; the cluster stops. `pgbackrest restore --type=time` rebuilds it in
# a fresh data folder, it starts on a new timeline and workers start (nobody
# runs `pgscribe resume`): they must see that the database forgot committed
# offsets and rewind by themselves. Asserted: tables equal the sequential
# reference of all 30 000, every command id recorded once, every audit event
# chained once (the audit stream rewinds by its resume floors too), no dead letter,
# `pgbackrest verify` clean. Printed: RPO (commands and seconds the restore
# point lost) and RTO (restore start to workers caught up).
#
# usage: scripts/dr-drill.sh   (the stack up: scripts/stack.sh up; build/pgscribe built)
# env:   DRILL_N (30000), DRILL_RATE (6000 commands/s produced), DRILL_WORKERS (2),
#        DRILL_AUDIT (10000 audit events, produced beside the commands),
#        DRILL_AUDIT_RATE (2000/s: both loads last about as long)
. "$(cd "$(dirname "$0")/.." && pwd)/tests/integration/lib.sh"
N=${DRILL_N:-30000}
MID=$((N / 2))
RATE=${DRILL_RATE:-6000}
WORKERS=${DRILL_WORKERS:-2}
NA=${DRILL_AUDIT:-10000}
ARATE=${DRILL_AUDIT_RATE:-2000}
STANZA=drill
pgs_test_init pitr_drill

NODE_ROOT=$(mktemp -d /var/tmp/pgscribe-drill.XXXXXX)
chmod 755 "$NODE_ROOT"
NODE=$NODE_ROOT/pg
BR=$NODE_ROOT/pgbackrest
PGNODE="$REPO/scripts/pgnode.sh"
mkdir -p "$BR"/{repo,log,spool,lock}
chown -R postgres: "$BR"
PORT=$("$PGNODE" free-port 56432)
cat >"$BR/pgbackrest.conf" <<CONF
[global]
repo1-path=$BR/repo
repo1-retention-full=2
repo1-retention-diff=4
compress-type=zst
log-path=$BR/log
lock-path=$BR/lock
spool-path=$BR/spool
log-level-console=warn
log-level-file=info
start-fast=y
archive-async=y
process-max=2

[$STANZA]
pg1-path=$NODE/data
pg1-socket-path=$NODE/sock
pg1-port=$PORT
CONF
chmod 644 "$BR/pgbackrest.conf"
br() { (cd / && runuser -u postgres -- pgbackrest --config="$BR/pgbackrest.conf" --stanza=$STANZA "$@"); }

drill_cleanup() {
    local rc=$?
    set +e
    "$PGNODE" stop "$NODE" >/dev/null 2>&1
    if [ $rc -ne 0 ]; then
        echo "=== last lines of the drill cluster's log" >&2
        tail -n 15 "$NODE/postgres.log" >&2
    fi
    rm -rf "$NODE_ROOT"
    (exit $rc)
    pgs_test_cleanup
}
trap drill_cleanup EXIT

PGNODE_CONF="archive_mode = on
archive_command = 'pgbackrest --config=$BR/pgbackrest.conf --stanza=$STANZA archive-push %p'
archive_timeout = 10" "$PGNODE" init "$NODE" "$PORT" >/dev/null
ADMIN=$("$PGNODE" conninfo "$NODE" postgres)
DB=pgscribe_drill
psql -X -q -d "$ADMIN" -c "CREATE DATABASE $DB"
ADMIN=$("$PGNODE" conninfo "$NODE" $DB)
"$PGSCRIBE_BIN" migrate --dir "$REPO/schemas/sql" --conninfo "$ADMIN" >/dev/null
export PGSCRIBE_PG_CONNINFO
PGSCRIBE_PG_CONNINFO=$("$PGNODE" conninfo "$NODE" $DB pgscribe_worker)
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$ADMIN" -c "$1"; }

br stanza-create
br check
br backup --type=full
note "stanza $STANZA created, full backup taken ($(br info --output=json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backup"]))') backup(s))"

"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.traces" --count "$N" --clinics 20 --seed 31 \
    --emit "$T_DIR/commands.jsonl" --no-progress
worker_pids=()
start_workers() { # TAG
    worker_pids=()
    for i in $(seq "$WORKERS"); do
        pgs_worker_launch "$1$i"
        worker_pids+=("$W_PID")
    done
    for i in $(seq "$WORKERS"); do pgs_worker_wait_assigned "$1$i" "${worker_pids[$((i - 1))]}"; done
}
stop_workers() {
    for pid in "${worker_pids[@]}"; do pgs_worker_stop "$pid"; done
}
applied() { q "SELECT count(*) FROM pgscribe.applied_commands" 2>/dev/null || echo -1; }
events() { q "SELECT count(*) FROM audit.event_ids" 2>/dev/null || echo -1; }

# Each load goes out in two parts: the heads (two thirds) before the
# restore target, the tails once it is taken, so that transactions of both
# streams commit after the target whatever the machine's pace (on a fast
# machine one stream could otherwise finish before the other's half).
HEAD_N=$((2 * N / 3))
HEAD_NA=$((2 * NA / 3))
head -n "$HEAD_N" "$T_DIR/commands.jsonl" >"$T_DIR/commands.head.jsonl"
tail -n +"$((HEAD_N + 1))" "$T_DIR/commands.jsonl" >"$T_DIR/commands.tail.jsonl"
start_workers a
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.head.jsonl" --rate "$RATE" --no-progress &
P_PID=$!
T_PIDS+=("$P_PID")
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count "$HEAD_NA" --clinics 20 --seed 32 --rate "$ARATE" \
    --no-progress &
PA_PID=$!
T_PIDS+=("$PA_PID")
# the restore target: the database's clock once about half of each load is
# committed, while the heads are still being applied
deadline=$((SECONDS + 120))
until [ "$(applied)" -ge "$MID" ] && [ "$(events)" -ge $((NA / 2)) ]; do
    [ $SECONDS -lt $deadline ] ||
        fail "only $(applied) of $MID commands, $(events) of $((NA / 2)) audit events applied within 120 s"
    sleep 0.05
done
TARGET=$(q "SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US+00')")
at_target=$(applied)
events_at_target=$(events)
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.tail.jsonl" --rate "$RATE" --no-progress &
P2_PID=$!
T_PIDS+=("$P2_PID")
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count "$((NA - HEAD_NA))" --clinics 20 --seed 33 \
    --rate "$ARATE" --no-progress &
PA2_PID=$!
T_PIDS+=("$PA2_PID")
note "restore target $TARGET ($at_target commands, $events_at_target audit events committed)"
for pid in "$P_PID" "$PA_PID" "$P2_PID" "$PA2_PID"; do
    wait "$pid" || fail "producing a part of the load failed"
    pgs_forget_pid "$pid"
done
deadline=$((SECONDS + 180))
until [ "$(applied)" -ge "$N" ] && [ "$(events)" -ge "$NA" ]; do
    [ $SECONDS -lt $deadline ] ||
        fail "only $(applied) of $N commands, $(events) of $NA audit events applied within 180 s"
    sleep 0.2
done
LAST=$(q "SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US+00')")
stop_workers
# the WAL up to the end of the load is archived before the cluster goes
q "SELECT pg_switch_wal()" >/dev/null
br check
"$PGNODE" stop "$NODE"
note "load of $N committed; cluster stopped"

# the restore, into a fresh data folder (the old one moved away, kept for nothing)
t_restore=$(pgs_clock_now_ms)
mv "$NODE/data" "$NODE_ROOT/data.lost"
runuser -u postgres -- mkdir -m 700 "$NODE/data"
br restore --type=time "--target=$TARGET" --target-action=promote --target-timeline=current
"$PGNODE" start "$NODE"
deadline=$((SECONDS + 120))
until [ "$(q "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ]; do
    [ $SECONDS -lt $deadline ] || fail "the restored cluster did not leave recovery within 120 s"
    sleep 0.2
done
t_up=$(pgs_clock_now_ms)
restored=$(applied)
restored_events=$(events)
ident=$(q "SELECT system_identifier || ' timeline=' || timeline FROM pgscribe.db_identity()")
note "restored to $TARGET: $restored commands, $restored_events audit events recorded, system_identifier=$ident"
[ "$restored" -lt "$N" ] || fail "the restore kept all $N commands: the target was not in the load"
[ "$restored" -gt 0 ] || fail "the restore kept no command"
[ "$restored_events" -lt "$NA" ] ||
    fail "the restore kept all $NA audit events: the target was not in the audit load"

# nobody runs resume: the workers see the database forgot and rewind by themselves
start_workers b
deadline=$((SECONDS + 180))
until [ "$(applied)" -ge "$N" ] && [ "$(events)" -ge "$NA" ]; do
    if [ $SECONDS -ge $deadline ]; then
        [ "$(events)" -ge "$NA" ] ||
            fail "only $(events) of $NA audit events recorded within 180 s after the restore (the audit stream's rewind lost some)"
        fail "only $(applied) of $N commands applied within 180 s after the restore"
    fi
    sleep 0.1
done
t_caught=$(pgs_clock_now_ms)
stop_workers
rewound=0
for i in $(seq "$WORKERS"); do
    rewound=$((rewound + $(grep -c "rewound topic=" "$T_DIR/worker-b$i.log" || true)))
done
[ "$rewound" -gt 0 ] || fail "no worker rewound a partition after the restore"

distinct=$(q "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
rows=$(applied)
[ "$distinct" -eq "$N" ] || fail "distinct command ids $distinct != $N"
[ "$rows" -eq "$N" ] || fail "applied_commands holds $rows rows for $N commands"
chained=$(q "SELECT count(DISTINCT event_id) || ' ' || count(*) FROM audit.events WHERE kind = 'event'")
[ "$chained" = "$NA $NA" ] || fail "audit.events holds (distinct, rows) $chained events, expected $NA once each"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/audit-verify.out" 2>&1 ||
    fail "audit verify after the restore: $(tail -n 3 "$T_DIR/audit-verify.out")"
pgs_reference "$T_DIR/commands.jsonl"
"$REPO/tests/integration/compare_tables.sh" "$ADMIN" \
    "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_REF_DB user=postgres" ||
    fail "tables differ from the sequential reference after the restore"
dead=$(pgs_dlq_count)
[ "$dead" -eq 0 ] || fail "$dead dead letters, expected 0"
br verify >"$T_DIR/verify.out" 2>&1 || fail "pgbackrest verify failed: $(tail -n 5 "$T_DIR/verify.out")"

lost=$((N - restored))
rpo_s=$(python3 -c 'import sys
from datetime import datetime as d
f = lambda s: d.strptime(s.replace("+00", ""), "%Y-%m-%d %H:%M:%S.%f")
print("%.1f" % (f(sys.argv[2]) - f(sys.argv[1])).total_seconds())' "$TARGET" "$LAST")
rto_ms=$((t_caught - t_restore))
echo "drill: RPO $lost commands and $((NA - restored_events)) audit events / ${rpo_s} s lost by the restore point (target to the last commit)"
echo "drill: RTO $((rto_ms / 1000)).$(((rto_ms % 1000) / 100)) s from restore start to workers caught up" \
    "(restore + recovery $(((t_up - t_restore) / 1000)) s, catch-up $(((t_caught - t_up) / 1000)) s)"
echo "ok: PITR to the middle of $N commands; $rewound partition(s) rewound by the workers, nobody ran resume;" \
    "tables equal the reference, each command id once, each of $NA audit events chained once, 0 dead letters, pgbackrest verify clean"
