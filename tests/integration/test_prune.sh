#!/usr/bin/env bash
# pgscribe prune: idempotency records older than the age go, in batches; the
# recent ones, the audit rows and the tables stay; the worker's own role may
# not prune; an age under a day is refused without --force.
. "$(dirname "$0")/lib.sh"
pgs_test_init prune
N=3000
OLD=2000
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 5 --no-progress
pgs_worker_start a
pgs_wait_applied $N 120
pgs_worker_stop "$W_PID"

# as if OLD of them had been applied 40 days ago
pgs_scalar "$T_DB" "UPDATE pgscribe.applied_commands SET applied_at = now() - interval '40 days'
    WHERE command_id IN (SELECT command_id FROM pgscribe.applied_commands ORDER BY command_id LIMIT $OLD)" >/dev/null

out=$("$PGSCRIBE_BIN" prune --conninfo "$ADMIN" --older-than 30d --dry-run)
echo "$out"
[[ $out == "would prune $OLD idempotency record(s) applied before "* ]] || fail "dry run said: $out"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -eq $N ] ||
    fail "the dry run deleted rows"

rc=0
"$PGSCRIBE_BIN" prune --conninfo "$ADMIN" --older-than 1h 2>"$T_DIR/short.err" || rc=$?
[ $rc -eq 2 ] || fail "an age under 1d without --force exited $rc, expected 2"
grep -q "under 1d" "$T_DIR/short.err" || fail "no reason given for refusing 1h: $(cat "$T_DIR/short.err")"

rc=0
"$PGSCRIBE_BIN" prune --conninfo "$PGSCRIBE_PG_CONNINFO" --older-than 30d 2>"$T_DIR/worker.err" || rc=$?
[ $rc -eq 1 ] || fail "the worker role pruned (exit $rc): it must not be able to delete"
grep -q "permission denied" "$T_DIR/worker.err" || fail "worker role: $(cat "$T_DIR/worker.err")"

out=$("$PGSCRIBE_BIN" prune --conninfo "$ADMIN" --older-than 30d --batch 300)
echo "$out"
[[ $out == "pruned $OLD idempotency record(s) applied before "*" in 7 transaction(s), "* ]] ||
    fail "prune said: $out"
left=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$left" -eq $((N - OLD)) ] || fail "$left records left, expected $((N - OLD))"
old_left=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands WHERE applied_at < now() - interval '1 day'")
[ "$old_left" -eq 0 ] || fail "$old_left old records survived"
audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq $N ] || fail "the write audit holds $audits rows after prune, expected $N"

out=$("$PGSCRIBE_BIN" prune --conninfo "$ADMIN" --older-than 30d)
[[ $out == "pruned 0 idempotency record(s)"* ]] || fail "second prune said: $out"
echo "ok: $OLD old idempotency records pruned in batches of 300, $((N - OLD)) recent ones and $N audit rows kept"
