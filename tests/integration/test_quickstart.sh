#!/usr/bin/env bash
# README.md's quick start, run exactly as written: the blocks between its
# <!-- quickstart:begin/end -->, <!-- quickstart-python:begin/end --> and
# <!-- quickstart-stop:begin/end --> markers, with the two Python producers
# saved from its <!-- example:FILE --> blocks, in a fresh stack of its own
# (PGS_STACK_DIR), so the suite's stack is not touched. Asserts that the
# generated commands and both producers' commands reached PostgreSQL, with a
# boolean that stayed a boolean, that nothing was dead-lettered and that the
# worker stopped cleanly.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
README=$REPO/README.md
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*" >&2; }

block() { # NAME: the fenced block between <!-- NAME:begin --> and <!-- NAME:end -->
    awk -v b="<!-- $1:begin -->" -v e="<!-- $1:end -->" \
        '$0 == b {on = 1; next} $0 == e {on = 0} on && !/^```/' "$README"
}
example() { # FILE: the fenced block right after <!-- example:FILE -->
    awk -v m="<!-- example:$1 -->" \
        '$0 == m {f = 1; next} f == 1 && /^```/ {f = 2; next} f == 2 && /^```/ {exit} f == 2' "$README"
}

W=$(mktemp -d /tmp/pgscribe-quickstart.XXXXXX)
chmod 755 "$W"
# The reader's checkout, as seen from $W: the README's relative paths
# (scripts/, build/, schemas/) resolve, and the saved producers land in $W.
# scripts/build.sh builds in the real checkout, whatever path calls it.
for d in scripts build schemas deploy; do ln -s "$REPO/$d" "$W/$d"; done
export PGS_STACK_DIR=$W/stack
# only what the README's own commands set may reach them
unset PGSCRIBE_KAFKA PGSCRIBE_PG_CONNINFO PGSCRIBE_PG_ADMIN_CONNINFO PGSCRIBE_CONFIG PGS_BUILD_DIR \
    PGS_PG_HOST PGS_PG_PORT PGS_PG_REF_CONNINFO
cleanup() {
    local rc=$?
    [ -f "$W/worker.pid" ] && kill -9 "$(cat "$W/worker.pid")" 2>/dev/null || true
    (cd "$W" && scripts/stack.sh down >/dev/null 2>&1) || true
    if [ $rc -eq 0 ]; then rm -rf "$W"; else echo "quickstart: kept $W (script, output)" >&2; fi
}
trap cleanup EXIT

for f in produce_json.py produce_avro.py; do
    example "$f" >"$W/$f"
    [ -s "$W/$f" ] || fail "README has no <!-- example:$f --> block"
done
for b in quickstart quickstart-python quickstart-stop; do
    [ -n "$(block "$b")" ] || fail "README has no <!-- $b:begin/end --> block"
done

# One shell, as a reader's terminal: the README's blocks in order; between
# the Python block and the stop block, the test records what PostgreSQL holds.
{
    echo 'set -euo pipefail'
    block quickstart
    echo 'echo "$worker" > worker.pid'
    block quickstart-python
    cat <<'CHECK'
for i in $(seq 30); do
  c=$(psql "$PGSCRIBE_PG_ADMIN_CONNINFO" -tAc "SELECT count(*) FROM clinic.patients WHERE clinic_id = 'clinic-007'")
  [ "$c" -ge 2 ] && break; sleep 1
done
psql "$PGSCRIBE_PG_ADMIN_CONNINFO" -tAc "SELECT family_name, active, weight_kg, birth_date FROM clinic.patients WHERE clinic_id = 'clinic-007' ORDER BY family_name" > rows.txt
psql "$PGSCRIBE_PG_ADMIN_CONNINFO" -tAc "SELECT count(*) FROM pgscribe.applied_commands" > applied.txt
CHECK
    block quickstart-stop
    echo 'rm -f worker.pid'
} >"$W/quickstart.sh"

note "running README's quick start ($(wc -l <"$W/quickstart.sh") lines) in $W"
start=$(date +%s)
(cd "$W" && bash quickstart.sh) >"$W/out.txt" 2>&1 || { tail -n 40 "$W/out.txt" >&2; fail "the quick start failed"; }
note "quick start done in $(($(date +%s) - start)) s"
cat "$W/out.txt" >&2

grep -qx '1000 commands applied' "$W/out.txt" || fail "the quick start did not print '1000 commands applied'"
grep -qE '^ clinic-00[123] +\| +[0-9]+$' "$W/out.txt" || fail "the quick start's psql showed no patients per clinic"
grep -qx 'Jones|t|71.50|1980-04-02' "$W/rows.txt" || fail "JSON producer's patient missing: $(cat "$W/rows.txt")"
grep -qx 'Smith|f|64.00|1975-11-30' "$W/rows.txt" || fail "Avro producer's patient missing: $(cat "$W/rows.txt")"
[ "$(cat "$W/applied.txt")" = 1002 ] || fail "applied_commands holds $(cat "$W/applied.txt"), not 1000 + 2"
if grep -q 'dead-lettering' /tmp/pgscribe-worker.log; then
    grep 'dead-lettering' /tmp/pgscribe-worker.log | head -n 5 >&2
    fail "the worker dead-lettered commands"
fi
grep -q 'stopped:' /tmp/pgscribe-worker.log || fail "the worker did not log its stopped: line"
echo "quickstart: README's commands ran as written; 1000 generated + 1 JSON + 1 Avro command applied, worker stopped cleanly"
