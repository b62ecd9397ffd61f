#!/usr/bin/env bash
# Integration test of `pgscribe migrate` and the shipped migrations against the
# local stack's PostgreSQL: tables, worker role, row-level security,
# idempotence, concurrent runs and the changed-file refusal. Works in its own
# database (pgscribe_migrate_test), dropped at the end.
#
# needs: scripts/stack.sh up (or scripts/pg.sh start); PGSCRIBE_BIN = the binary
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=${PGS_STACK_DIR:-$REPO/.stack}
BIN=${PGSCRIBE_BIN:-$REPO/build/pgscribe}
DB=pgscribe_migrate_test
TMP=$(mktemp -d)

passed=0
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }

[[ -f $STACK/env ]] || { echo "test_migrate: no $STACK/env: run scripts/stack.sh up" >&2; exit 1; }
[[ -x $BIN ]] || { echo "test_migrate: PGSCRIBE_BIN=$BIN is not executable" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$STACK/env"
set +a

PGBIN=/usr/lib/postgresql/15/bin
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=postgres"
WORKER="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$DB user=pgscribe_worker"

cleanup() {
    "$PGBIN/dropdb" -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres --if-exists "$DB" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# One value, no alignment; ON_ERROR_STOP so a failing statement fails psql.
q() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -Atq "$ADMIN" -c "$1"; }
qw() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -Atq "$WORKER" "$@"; }

"$PGBIN/dropdb" -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres --if-exists "$DB" 2>/dev/null
"$PGBIN/createdb" -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres "$DB"

# --- first run, three at once: the advisory lock lets exactly one apply.
for i in 1 2 3; do
    "$BIN" migrate --dir "$REPO/schemas/sql" --conninfo "$ADMIN" >"$TMP/run$i.out" 2>&1 &
    echo $! >"$TMP/run$i.pid"
done
for i in 1 2 3; do
    wait "$(cat "$TMP/run$i.pid")" || fail "concurrent migrate run $i exited non-zero: $(cat "$TMP/run$i.out")"
done
nfiles=$(find "$REPO/schemas/sql" -name '[0-9]*_*.sql' | wc -l)
applied_runs=$(grep -l "^migrations: $nfiles applied, 0 already applied" "$TMP"/run*.out | wc -l)
noop_runs=$(grep -l "^migrations: 0 applied, $nfiles already applied" "$TMP"/run*.out | wc -l)
if [[ $applied_runs -eq 1 && $noop_runs -eq 2 ]]; then
    ok "3 concurrent runs: one applied $nfiles files, two found them applied"
else
    fail "concurrent runs: $(cat "$TMP"/run*.out)"
fi
grep -q '^applied 0003_clinic_schema.sql$' "$TMP"/run*.out && ok "prints 'applied 0003_clinic_schema.sql'" ||
    fail "no 'applied 0003_clinic_schema.sql' line"
[[ $(q "SELECT count(*) FROM pgscribe.schema_migrations") == "$nfiles" ]] &&
    ok "schema_migrations has $nfiles rows" || fail "schema_migrations row count"

# --- tables, function, role
for t in pgscribe.applied_commands audit.events audit.chain_heads pgscribe.column_policy \
    clinic.patients clinic.appointments clinic.encounters clinic.prescriptions; do
    [[ $(q "SELECT to_regclass('$t') IS NOT NULL") == t ]] && ok "table $t exists" || fail "table $t missing"
done
[[ $(q "SELECT count(*) FROM pg_proc WHERE proname = 'expect_rows'") == 1 ]] &&
    ok "function pgscribe.expect_rows exists" || fail "pgscribe.expect_rows missing"
[[ $(q "SELECT rolcanlogin AND NOT rolsuper AND NOT rolbypassrls AND NOT rolcreatedb AND NOT rolcreaterole
        FROM pg_roles WHERE rolname = 'pgscribe_worker'") == t ]] &&
    ok "pgscribe_worker: LOGIN, no SUPERUSER/BYPASSRLS/CREATEDB/CREATEROLE" ||
    fail "pgscribe_worker attributes"
owned=$(q "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = 'pgscribe_worker'")
owned_ns=$(q "SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = 'pgscribe_worker'")
[[ $owned == 0 && $owned_ns == 0 ]] && ok "pgscribe_worker owns no relation or schema" ||
    fail "pgscribe_worker owns $owned relations, $owned_ns schemas"
[[ $(q "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'clinic' AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity") == 4 ]] &&
    ok "4 clinic tables have RLS enabled and forced" || fail "RLS not enabled+forced on all clinic tables"
[[ $(q "SELECT count(*) FROM pgscribe.column_policy WHERE is_phi AND table_name = 'patients' AND column_name = 'birth_date'") == 1 ]] &&
    ok "column_policy marks patients.birth_date as PHI" || fail "column_policy lacks patients.birth_date"

# --- row-level security, as the worker
A_ID=11111111-1111-1111-1111-111111111111
B_ID=22222222-2222-2222-2222-222222222222
if qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" \
    -c "INSERT INTO clinic.patients (id, clinic_id, family_name) VALUES ('$A_ID', 'A', 'x')" -c "COMMIT" >/dev/null 2>"$TMP/rls_a.err"; then
    ok "worker inserts a clinic A row with clinic A set"
else
    fail "worker insert for clinic A: $(cat "$TMP/rls_a.err")"
fi
if qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" \
    -c "INSERT INTO clinic.patients (id, clinic_id, family_name) VALUES ('$B_ID', 'B', 'y')" -c "COMMIT" >/dev/null 2>"$TMP/rls_b.err"; then
    fail "worker inserted a clinic B row while clinic A was set"
elif grep -q 'row-level security' "$TMP/rls_b.err"; then
    ok "worker cannot insert a clinic B row with clinic A set (RLS)"
else
    fail "clinic B insert failed for another reason: $(cat "$TMP/rls_b.err")"
fi
# A clinic B row written by postgres (a superuser, so RLS does not apply);
# the worker under clinic A must not see it.
q "INSERT INTO clinic.patients (id, clinic_id, family_name) VALUES ('$B_ID', 'B', 'y')" >/dev/null
[[ $(q "SELECT count(*) FROM clinic.patients") == 2 ]] ||
    fail "setup: expected 2 patient rows in total"
seen=$(qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" -c "SELECT string_agg(clinic_id, ',') FROM clinic.patients" -c "COMMIT" | tail -n 1)
[[ $seen == A ]] && ok "worker with clinic A sees only clinic A's row" || fail "worker with clinic A saw: $seen"
seen=$(qw -c "SELECT count(*) FROM clinic.patients")
[[ $seen == 0 ]] && ok "worker with no clinic set sees no row" || fail "worker with no clinic set saw $seen rows"
if qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" \
    -c "UPDATE clinic.patients SET clinic_id = 'B' WHERE id = '$A_ID'" -c "COMMIT" >/dev/null 2>&1; then
    fail "worker moved a clinic A row to clinic B"
else
    ok "worker cannot move a row to another clinic"
fi
# the tenant wall in SQL: a row of another clinic than the transaction's is
# refused (PS003), and an audit event of another clinic is not chained
if qw -v VERBOSITY=verbose -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" \
    -c "SELECT audit.append_events(ARRAY['B'], ARRAY[gen_random_uuid()], ARRAY['x'], ARRAY['READ'], ARRAY['t'], ARRAY['r'], ARRAY['SUCCESS'], ARRAY[0::bigint], ARRAY['s'], ARRAY['{}'::jsonb], ARRAY[0], ARRAY[0::bigint], 't', ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text])" \
    -c "COMMIT" >/dev/null 2>"$TMP/ps003.err"; then
    fail "expect_clinic let a clinic B row through a clinic A transaction"
else
    grep -q 'PS003' "$TMP/ps003.err" && ok "audit.append_events refuses another clinic's event (PS003)" ||
        fail "expect_clinic error: $(cat "$TMP/ps003.err")"
fi
[[ $(q "SELECT count(*) FROM audit.events") == 0 ]] && ok "the refused audit row was not written" ||
    fail "an audit row was written through a refused expect_clinic"
[[ $(qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" -c "SELECT pgscribe.expect_clinic('A')" -c "COMMIT" | sed -n 2p) == A ]] &&
    ok "expect_clinic passes the transaction's own clinic" || fail "expect_clinic refused the transaction's clinic"
# the multi-row statements' wall, once per statement (migration 0019): a row
# of B, or a statement writing under B, in an A transaction is refused
for args in "ARRAY['A','B'], 'A'" "ARRAY['A','A'], 'B'"; do
    if qw -v VERBOSITY=verbose -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" \
        -c "SELECT pgscribe.expect_clinics($args)" -c "COMMIT" >/dev/null 2>"$TMP/ps003m.err"; then
        fail "expect_clinics($args) passed in a clinic A transaction"
    else
        grep -q 'PS003' "$TMP/ps003m.err" && ok "expect_clinics($args) refused in a clinic A transaction (PS003)" ||
            fail "expect_clinics error: $(cat "$TMP/ps003m.err")"
    fi
done
[[ $(qw -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 'A', true)" -c "SELECT pgscribe.expect_clinics(ARRAY['A','A'], 'A')" -c "COMMIT" | sed -n 2p) == t ]] &&
    ok "expect_clinics passes a statement of the transaction's clinic" ||
    fail "expect_clinics refused the transaction's clinic"
if qw -v VERBOSITY=verbose -c "SELECT pgscribe.expect_rows(1, 0)" >/dev/null 2>"$TMP/ps001.err"; then
    fail "expect_rows(1, 0) did not raise"
else
    grep -q 'PS001: row not found or version mismatch' "$TMP/ps001.err" && ok "expect_rows(1, 0) raises PS001" ||
        fail "expect_rows error: $(cat "$TMP/ps001.err")"
fi
[[ $(qw -c "SELECT pgscribe.expect_rows(1, 1)") == 1 && $(qw -c "SELECT pgscribe.expect_rows(0, 0)") == 0 ]] &&
    ok "expect_rows passes a found row and a no-op through" || fail "expect_rows(1,1)/(0,0)"

# --- second run is a no-op
out=$("$BIN" migrate --dir "$REPO/schemas/sql" --conninfo "$ADMIN" 2>&1) || fail "second run exited non-zero: $out"
[[ $out == "migrations: 0 applied, $nfiles already applied" ]] && ok "second run: 0 applied" ||
    fail "second run printed: $out"

# --- the conninfo comes from the environment when not given
out=$(PGSCRIBE_PG_ADMIN_CONNINFO=$ADMIN "$BIN" migrate --dir "$REPO/schemas/sql" 2>&1) &&
    [[ $out == "migrations: 0 applied, $nfiles already applied" ]] &&
    ok "conninfo taken from PGSCRIBE_PG_ADMIN_CONNINFO" || fail "env conninfo run: $out"

# --- a changed, already applied file stops the run, naming the file
cp -r "$REPO/schemas/sql" "$TMP/sql"
echo "-- edited after it was applied" >>"$TMP/sql/0003_clinic_schema.sql"
printf 'CREATE TABLE pgscribe.never_applied (x int);\n' >"$TMP/sql/9999_never.sql"
set +e
out=$("$BIN" migrate --dir "$TMP/sql" --conninfo "$ADMIN" 2>&1)
rc=$?
set -e
if [[ $rc -ne 0 && $out == *0003_clinic_schema.sql* ]]; then
    ok "changed 0003 refused (exit $rc, names the file)"
else
    fail "changed file: exit $rc, output: $out"
fi
[[ $(q "SELECT to_regclass('pgscribe.never_applied') IS NULL") == t ]] &&
    ok "nothing further applied after the refusal" || fail "9999_never.sql was applied despite the changed file"
set +e
status=$("$BIN" migrate --status --dir "$TMP/sql" --conninfo "$ADMIN" 2>&1)
rc=$?
set -e
[[ $rc -ne 0 && $status == *"0003  changed"* && $status == *"9999  pending"* && $status == *"0001  applied"* ]] &&
    ok "--status shows applied, changed and pending" || fail "--status (exit $rc): $status"

# --- a failing migration leaves no trace (file + bookkeeping in one transaction)
rm "$TMP/sql/9999_never.sql"
cp "$REPO/schemas/sql/0003_clinic_schema.sql" "$TMP/sql/"
printf 'CREATE TABLE pgscribe.half (x int);\nSELECT no_such_function();\n' >"$TMP/sql/9998_broken.sql"
set +e
out=$("$BIN" migrate --dir "$TMP/sql" --conninfo "$ADMIN" 2>&1)
rc=$?
set -e
[[ $rc -ne 0 && $out == *9998_broken.sql* ]] && ok "failing migration exits $rc naming the file" ||
    fail "failing migration: exit $rc, output: $out"
[[ $(q "SELECT to_regclass('pgscribe.half') IS NULL AND NOT EXISTS (SELECT 1 FROM pgscribe.schema_migrations WHERE version = 9998)") == t ]] &&
    ok "failed migration rolled back entirely" || fail "failed migration left a table or a row behind"

# --- --dry-run runs the pending migrations in one transaction and rolls back
rm "$TMP/sql/9998_broken.sql"
printf 'CREATE TABLE pgscribe.dry_a (x int);\n' >"$TMP/sql/9996_dry_a.sql"
printf 'ALTER TABLE pgscribe.dry_a ADD COLUMN y int;\n' >"$TMP/sql/9997_dry_b.sql" # needs 9996
set +e
out=$("$BIN" migrate --dry-run --dir "$TMP/sql" --conninfo "$ADMIN" 2>&1)
rc=$?
set -e
[[ $rc -eq 0 && $out == *"would apply 9996_dry_a.sql"* && $out == *"would apply 9997_dry_b.sql"* &&
    $out == *"2 would apply"* ]] && ok "--dry-run runs dependent pending migrations" ||
    fail "--dry-run: exit $rc, output: $out"
[[ $(q "SELECT to_regclass('pgscribe.dry_a') IS NULL AND NOT EXISTS (SELECT 1 FROM pgscribe.schema_migrations WHERE version >= 9996)") == t ]] &&
    ok "--dry-run left no table and no row behind" || fail "--dry-run changed the database"
printf 'SELECT no_such_function();\n' >"$TMP/sql/9998_broken.sql"
set +e
out=$("$BIN" migrate --dry-run --dir "$TMP/sql" --conninfo "$ADMIN" 2>&1)
rc=$?
set -e
[[ $rc -eq 1 && $out == *9998_broken.sql* ]] && ok "--dry-run of a failing migration exits 1 naming it" ||
    fail "--dry-run of a failing migration: exit $rc, output: $out"
rm "$TMP/sql/9996_dry_a.sql" "$TMP/sql/9997_dry_b.sql" "$TMP/sql/9998_broken.sql"

# --- the resume-floor triggers (0015, 0017, rewritten by 0020): each record
# takes its own partition's floor from pgscribe.resume_floors (1 is not 11),
# none without one, and a floor given explicitly stays
floors=$("$PGBIN/psql" -X -v ON_ERROR_STOP=1 -Atq "$ADMIN" -c "BEGIN" \
    -c "SELECT set_config('pgscribe.resume_floors', ',11:200,1:100,', true)" \
    -c "INSERT INTO pgscribe.applied_commands (command_id, clinic_id, topic, kafka_partition, kafka_offset)
        VALUES ('00000000-0000-4000-8000-0000000000f1', 'A', 'rf', 1, 150),
               ('00000000-0000-4000-8000-0000000000f2', 'A', 'rf', 11, 250),
               ('00000000-0000-4000-8000-0000000000f3', 'A', 'rf', 2, 5)" \
    -c "INSERT INTO pgscribe.applied_commands (command_id, clinic_id, topic, kafka_partition, kafka_offset, resume_floor)
        VALUES ('00000000-0000-4000-8000-0000000000f4', 'A', 'rf', 1, 160, 7)" \
    -c "INSERT INTO audit.event_ids (event_id, clinic_id, source_topic, source_partition)
        VALUES ('00000000-0000-4000-8000-0000000000e1', 'A', 'rf', 11),
               ('00000000-0000-4000-8000-0000000000e2', 'A', 'rf', 3)" \
    -c "SELECT string_agg(coalesce(resume_floor::text, '-'), ',' ORDER BY command_id) FROM pgscribe.applied_commands WHERE topic = 'rf'" \
    -c "SELECT string_agg(coalesce(resume_floor::text, '-'), ',' ORDER BY event_id) FROM audit.event_ids WHERE source_topic = 'rf'" \
    -c "ROLLBACK" | tail -n 2 | paste -sd' ')
[[ $floors == "100,200,-,7 200,-" ]] && ok "resume-floor triggers: each partition's own floor, none without one, an explicit one kept" ||
    fail "resume-floor triggers gave: $floors"
no_set=$(q "SELECT count(*) FROM pg_proc WHERE proname IN ('set_resume_floor', 'set_event_resume_floor') AND proconfig IS NULL")
[[ $no_set == 2 ]] && ok "the resume-floor triggers carry no SET clause" || fail "$no_set of 2 resume-floor triggers without SET"

# --- an unreachable database exits 4
set +e
"$BIN" migrate --dir "$REPO/schemas/sql" --conninfo "host=$TMP/nowhere port=1 dbname=x password=s3cret-x" >"$TMP/unreach.out" 2>&1
rc=$?
set -e
[[ $rc -eq 4 ]] && ok "unreachable database exits 4" || fail "unreachable database exited $rc"
grep -q 's3cret-x' "$TMP/unreach.out" && fail "the conninfo password was printed" || ok "password not printed"

echo "test_migrate: $passed passed, $failed failed"
((failed == 0))
