#!/usr/bin/env bash
# Rewind after a restore: 20 000 commands; the database is copied at a
# midpoint (CREATE DATABASE ... TEMPLATE, the worker stopped), the rest is
# applied, then the copy is put back: the database went back in time while
# Kafka's committed offsets did not. A restart that did not go back logs no
# rewind; `pgscribe resume --from-database --dry-run` shows the rewind and
# changes nothing; a worker started with nobody running resume rewinds by
# itself and applies the forgotten commands: tables equal the reference of
# all 20 000, each command id recorded once, no dead letter. A second time
# back, `pgscribe resume --from-database` refuses while a worker is in the
# group and, with the workers stopped, commits the rewound offsets itself.
. "$(dirname "$0")/lib.sh"
pgs_test_init resume
N=20000
HALF=10000
SNAP=${T_DB}_snap
SNAP2=${T_DB}_snap2
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
cleanup_snaps() {
    for db in "$SNAP" "$SNAP2"; do
        pgs_psql postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
cleanup_snaps
trap 'rc=$?; set +e; cleanup_snaps; (exit $rc); pgs_test_cleanup' EXIT

rewinds() { grep -c "rewound topic=" "$1" || true; }
# go_back COPY: the test database is replaced by COPY (taken earlier)
go_back() {
    pgs_psql postgres -c "DROP DATABASE $T_DB WITH (FORCE)" >/dev/null
    pgs_psql postgres -c "ALTER DATABASE $1 RENAME TO $T_DB" >/dev/null
}

# the 20 000 commands, generated once; the worker sees the first half, then the rest
"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.traces" --count $N --clinics 20 --seed 12 \
    --emit "$T_DIR/commands.jsonl" --no-progress
head -n $HALF "$T_DIR/commands.jsonl" >"$T_DIR/first.jsonl"
tail -n +$((HALF + 1)) "$T_DIR/commands.jsonl" >"$T_DIR/rest.jsonl"

"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/first.jsonl" --no-progress
pgs_worker_start a
pgs_wait_applied $HALF 300
pgs_worker_stop "$W_PID"
grep -q "rewind check: 0 of [0-9]* partition(s) rewound, system_identifier=[0-9-]* timeline=[0-9]*" \
    "$T_DIR/worker-a.log" || fail "worker a logged no rewind check"
[ "$(rewinds "$T_DIR/worker-a.log")" -eq 0 ] || fail "a fresh start rewound"

# the copies: nobody is connected to the test database now
pgs_psql postgres -c "CREATE DATABASE $SNAP TEMPLATE $T_DB" >/dev/null
pgs_psql postgres -c "CREATE DATABASE $SNAP2 TEMPLATE $T_DB" >/dev/null
note "copied the database at $HALF applied commands"

"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/rest.jsonl" --no-progress
pgs_worker_start b
pgs_wait_applied $N 300
pgs_worker_stop "$W_PID"
# a restart of a database that did not go back: no rewind
grep -q "rewind check: 0 of" "$T_DIR/worker-b.log" || fail "worker b logged no rewind check"
[ "$(rewinds "$T_DIR/worker-b.log")" -eq 0 ] || fail "a restart without going back rewound"

# 1. back in time; the dry run shows the rewind and commits nothing
go_back "$SNAP"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -eq $HALF ] ||
    fail "the copy does not hold $HALF records"
"$PGSCRIBE_BIN" resume --from-database --dry-run -c "$T_CONF" >"$T_DIR/dry1.out"
cat "$T_DIR/dry1.out"
grep -q "rewind to" "$T_DIR/dry1.out" || fail "dry run shows no rewind"
grep -q "would be rewound, nothing committed" "$T_DIR/dry1.out" || fail "dry run said otherwise"
"$PGSCRIBE_BIN" resume --from-database --dry-run -c "$T_CONF" >"$T_DIR/dry2.out"
diff <(sed 1d "$T_DIR/dry1.out") <(sed 1d "$T_DIR/dry2.out") >/dev/null ||
    fail "the dry run changed the committed offsets"
planned=$(grep -c "rewind to" "$T_DIR/dry1.out")

# 2. nobody runs resume: the worker rewinds by itself
pgs_worker_start c
pgs_wait_applied $N 300
pgs_worker_stop "$W_PID"
got=$(rewinds "$T_DIR/worker-c.log")
[ "$got" -eq "$planned" ] || fail "worker c rewound $got partition(s), the dry run planned $planned"
grep "rewound topic=" "$T_DIR/worker-c.log" | head -n 3 >&2
distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N"
audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq $N ] || fail "write audit rows $audits != $N"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference after the rewind"
dead=$(pgs_dlq_count)
[ "$dead" -eq 0 ] || fail "$dead dead letters, expected 0"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/verify.out" 2>&1 ||
    fail "audit verify failed after the rewind: $(tail -n 3 "$T_DIR/verify.out")"

# 3. back in time again: resume refuses while the group has a member ...
go_back "$SNAP2"
kcat -b "$PGSCRIBE_KAFKA" -G "$T_RUN" "$T_RUN.metrics" >/dev/null 2>&1 &
K_PID=$!
T_PIDS+=("$K_PID")
deadline=$((SECONDS + 60))
rc=0
until "$PGSCRIBE_BIN" resume --from-database -c "$T_CONF" >"$T_DIR/busy.out" 2>"$T_DIR/busy.err"; do
    rc=$?
    grep -q "has [1-9][0-9]* member(s)" "$T_DIR/busy.err" && break
    [ $SECONDS -lt $deadline ] || fail "resume with a member in the group: $(cat "$T_DIR/busy.err")"
    sleep 1
done
[ $rc -eq 1 ] || fail "resume with a member in the group exited $rc, expected 1"
grep -q "stop every worker of the group first; nothing was changed" "$T_DIR/busy.err" ||
    fail "resume refused without saying why: $(cat "$T_DIR/busy.err")"
kill -TERM "$K_PID"
wait "$K_PID" 2>/dev/null || true
pgs_forget_pid "$K_PID"

# ... and commits the rewound offsets once it has none
deadline=$((SECONDS + 60))
until "$PGSCRIBE_BIN" resume --from-database -c "$T_CONF" >"$T_DIR/resume.out" 2>"$T_DIR/resume.err"; do
    [ $SECONDS -lt $deadline ] || fail "resume failed: $(cat "$T_DIR/resume.err")"
    sleep 1
done
cat "$T_DIR/resume.out"
grep -q "committed $planned rewound offset(s) for group $T_RUN" "$T_DIR/resume.out" ||
    fail "resume did not commit the $planned rewound offsets"
"$PGSCRIBE_BIN" resume --from-database --dry-run -c "$T_CONF" >"$T_DIR/dry3.out"
grep -q "nothing to rewind" "$T_DIR/dry3.out" || fail "offsets still ahead after resume"
pgs_worker_start e
pgs_wait_applied $N 300
pgs_worker_stop "$W_PID"
[ "$(rewinds "$T_DIR/worker-e.log")" -eq 0 ] || fail "worker e rewound after resume had"
distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N after resume"
pgs_compare_tables || fail "tables differ from the reference after resume"
echo "ok: $planned partition(s) rewound by the worker and by resume; $N commands applied once, tables equal the reference, no dead letter, no rewind without going back"
