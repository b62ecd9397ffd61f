#!/usr/bin/env bash
# Failover without loss: a primary and an asynchronous streaming standby
# (scripts/pgnode.sh, pg_basebackup -R) on loopback; two workers connect with
# a multi-host conninfo (target_session_attrs=read-write). During a
# 30 000-command load the primary is killed (kill -9, postmaster and
# backends) and the standby promoted (pg_ctl promote). The workers find the
# new primary by themselves; the standby may have missed the last commits
# the workers saw final, so each worker sees the new timeline, leaves the
# group cleanly and starts again in-process, and the new assignment rewinds
# what the database forgot. Asserted: tables equal the sequential reference
# of all 30 000, each command id recorded once (no duplicate applied), no
# dead letter, the workers never exited. Printed: kill to the first commit
# on the new primary, and to caught up.
# integration.failover; by hand: the stack up, then bash tests/integration/test_failover.sh.
. "$(dirname "$0")/lib.sh"
N=${FAILOVER_N:-30000}
KILL_AT=$((N * 2 / 5))
RATE=${FAILOVER_RATE:-6000}
pgs_test_init failover

NODE_ROOT=$(mktemp -d /var/tmp/pgscribe-failover.XXXXXX)
chmod 755 "$NODE_ROOT"
PGNODE="$REPO/scripts/pgnode.sh"
A=$NODE_ROOT/a
B=$NODE_ROOT/b
fo_cleanup() {
    local rc=$?
    set +e
    for n in "$A" "$B"; do "$PGNODE" stop "$n" >/dev/null 2>&1; done
    if [ $rc -ne 0 ]; then
        for n in "$A" "$B"; do
            echo "=== last lines of $n/postgres.log" >&2
            tail -n 8 "$n/postgres.log" >&2
        done
    fi
    rm -rf "$NODE_ROOT"
    (exit $rc)
    pgs_test_cleanup
}
trap fo_cleanup EXIT

PA=$("$PGNODE" free-port 57432)
"$PGNODE" init "$A" "$PA" >/dev/null
DB=pgscribe_failover
psql -X -q -d "$("$PGNODE" conninfo "$A")" -c "CREATE DATABASE $DB"
"$PGSCRIBE_BIN" migrate --dir "$REPO/schemas/sql" --conninfo "$("$PGNODE" conninfo "$A" $DB)" >/dev/null
PB=$("$PGNODE" free-port $((PA + 1)))
"$PGNODE" standby "$B" "$A" "$PB" >/dev/null
ADMIN_A=$("$PGNODE" conninfo "$A" $DB)
ADMIN_B=$("$PGNODE" conninfo "$B" $DB)
export PGSCRIBE_PG_CONNINFO="host=127.0.0.1,127.0.0.1 port=$PA,$PB dbname=$DB user=pgscribe_worker target_session_attrs=read-write"
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
applied() { q "$1" "SELECT count(*) FROM pgscribe.applied_commands" 2>/dev/null || echo -1; }
[ "$(q "$ADMIN_B" "SELECT pg_is_in_recovery()")" = t ] || fail "node b is not a standby"

"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.traces" --count "$N" --clinics 20 --seed 41 \
    --emit "$T_DIR/commands.jsonl" --no-progress
pids=()
for i in 1 2; do
    pgs_worker_launch "w$i"
    pids+=("$W_PID")
done
for i in 1 2; do pgs_worker_wait_assigned "w$i" "${pids[$((i - 1))]}"; done

"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.jsonl" --rate "$RATE" --no-progress &
P_PID=$!
T_PIDS+=("$P_PID")
deadline=$((SECONDS + 120))
until [ "$(applied "$ADMIN_A")" -ge "$KILL_AT" ]; do
    [ $SECONDS -lt $deadline ] || fail "only $(applied "$ADMIN_A") of $KILL_AT applied within 120 s"
    sleep 0.05
done
"$PGNODE" kill "$A"
t_kill=$(pgs_clock_now_ms)
note "primary killed (kill -9) at about $KILL_AT applied"
sleep 1
"$PGNODE" promote "$B"
t_promoted=$(pgs_clock_now_ms)
at_promotion=$(applied "$ADMIN_B")
# what the standby holds per partition at promotion: the highest offset and
# resume floor recorded, the checkpoint (for the report of missing commands)
q "$ADMIN_B" "SELECT kafka_partition, max(kafka_offset), max(resume_floor), count(*),
    (SELECT next_offset FROM pgscribe.resume_checkpoints r WHERE r.topic = a.topic
      AND r.kafka_partition = a.kafka_partition)
    FROM pgscribe.applied_commands a GROUP BY topic, kafka_partition ORDER BY 1" \
    >"$T_DIR/at-promotion.txt" 2>&1 || true
ident=$(q "$ADMIN_B" "SELECT system_identifier || ' timeline=' || timeline FROM pgscribe.db_identity()")
note "standby promoted after $((t_promoted - t_kill)) ms: $at_promotion commands recorded, system_identifier=$ident"
deadline=$((SECONDS + 120))
until [ "$(applied "$ADMIN_B")" -gt "$at_promotion" ]; do
    [ $SECONDS -lt $deadline ] || fail "no commit on the new primary within 120 s of the promotion"
    sleep 0.05
done
t_first=$(pgs_clock_now_ms)
note "first commit on the new primary $((t_first - t_kill)) ms after the kill"
wait "$P_PID" || fail "the producer failed"
pgs_forget_pid "$P_PID"
# missing_report: which commands the new primary lacks, with their
# partition and offset in the commands topic, beside what the standby held
# at promotion and what each worker rewound
missing_report() {
    q "$ADMIN_B" "SELECT command_id FROM pgscribe.applied_commands" | sort >"$T_DIR/ids.db"
    # the topic holds Avro: a command is found by its message key and its
    # place among the commands of that key (the producer keeps their order)
    kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.commands" -e -q -f '%p\t%o\t%k\n' 2>/dev/null |
        python3 -c '
import collections, json, sys
have = set(l.strip() for l in open(sys.argv[1]))
order = collections.defaultdict(list)
for line in open(sys.argv[2]):
    c = json.loads(line)
    key = "%s/%s/%s" % (c["clinic_id"], c["entity"], "/".join(str(v) for v in c["key"].values()))
    order[key].append(c["command_id"])
seen = collections.Counter()
msgs = sorted((int(p), int(o), k) for p, o, k in (l.rstrip("\n").split("\t", 2) for l in sys.stdin))
for p, o, k in msgs:
    ids = order.get(k, [])
    cid = ids[seen[k]] if seen[k] < len(ids) else "?"
    seen[k] += 1
    if cid not in have:
        print("missing partition=%d offset=%d key=%s command_id=%s" % (p, o, k, cid))' \
            "$T_DIR/ids.db" "$T_DIR/commands.jsonl" |
        sort -t= -k2,2n -k3,3n >"$T_DIR/missing.txt"
    echo "=== $(wc -l <"$T_DIR/missing.txt") command(s) missing on the new primary:" >&2
    head -n 40 "$T_DIR/missing.txt" >&2
    echo "=== at promotion (partition, max offset, max floor, records, checkpoint):" >&2
    cat "$T_DIR/at-promotion.txt" >&2
    for i in 1 2; do
        echo "=== w$i: identity changes, rewinds, checks, revocations" >&2
        grep -hE 'identity changed|another database|rewound topic|rewind check|revoked|assigned [0-9]|checkpoints|stopping|starting again|dead-lettering"' \
            "$T_DIR/worker-w$i.log" | sed 's/^ts=\([^ ]*\) .*msg="/\1 /' | cut -c1-220 >&2
    done
}
deadline=$((SECONDS + 180))
until [ "$(applied "$ADMIN_B")" -ge "$N" ]; do
    if [ $SECONDS -ge $deadline ]; then
        missing_report
        fail "only $(applied "$ADMIN_B") of $N commands applied within 180 s after the promotion"
    fi
    sleep 0.1
done
t_caught=$(pgs_clock_now_ms)
note "all $N recorded on the new primary $(((t_caught - t_kill) / 1000)) s after the kill"
for i in 1 2; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || fail "worker w$i exited after the failover"
done
for pid in "${pids[@]}"; do pgs_worker_stop "$pid"; done

restarts=0 rewound=0
for i in 1 2; do
    log=$T_DIR/worker-w$i.log
    restarts=$((restarts + $(grep -c "database identity changed (" "$log" || true)))
    rewound=$((rewound + $(grep -c "rewound topic=" "$log" || true)))
done
[ "$restarts" -ge 1 ] || fail "no worker saw the database identity change"
distinct=$(q "$ADMIN_B" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
rows=$(applied "$ADMIN_B")
[ "$distinct" -eq "$N" ] || fail "distinct command ids $distinct != $N"
[ "$rows" -eq "$N" ] || fail "applied_commands holds $rows rows for $N commands"
audits=$(q "$ADMIN_B" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq "$N" ] || fail "write audit rows $audits != $N (a command applied twice or not at all)"
pgs_reference "$T_DIR/commands.jsonl"
"$REPO/tests/integration/compare_tables.sh" "$ADMIN_B" \
    "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_REF_DB user=postgres" ||
    fail "tables differ from the sequential reference after the failover"
dead=$(pgs_dlq_count)
[ "$dead" -eq 0 ] || fail "$dead dead letters, expected 0"
echo "failover: kill -9 -> promoted $((t_promoted - t_kill)) ms (1 s of it the test's wait)," \
    "-> first commit on the new primary $((t_first - t_kill)) ms, -> caught up $(((t_caught - t_kill) / 1000)) s;" \
    "the standby had $at_promotion commands at promotion, $restarts in-process restart(s), $rewound partition(s) rewound"
echo "ok: $N commands across a failover: tables equal the reference, each command id once, 0 dead letters, the workers never exited"
