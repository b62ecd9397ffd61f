#!/usr/bin/env bash
# Walls in the catalog and the role: a worker connected as a role RLS does
# not bind (superuser, BYPASSRLS, owner of an entity) refuses to start with
# exit code 4; a table without forced RLS or without a clinic policy is not
# an entity and the start log says why; keys (clinic_id, id) let clinic B
# insert clinic A's id as its own row, a key repeating the command's clinic is
# applied and one naming another clinic is a tenant dead letter; the worker
# role cannot read audit.events.
. "$(dirname "$0")/lib.sh"
pgs_test_init walls_catalog
WORKER_CONNINFO=$PGSCRIBE_PG_CONNINFO
BYPASS_ROLE="pgs_t_walls_bypass"

cleanup_roles() {
    pgs_psql postgres -c "DROP ROLE IF EXISTS $BYPASS_ROLE" >/dev/null 2>&1 || true
}
trap 'rc=$?; set +e; cleanup_roles; (exit $rc); pgs_test_cleanup' EXIT

# expect_refusal NAME CONNINFO PATTERN: the worker exits 4 at start with one
# "cannot start" line matching PATTERN.
expect_refusal() {
    local name=$1 conninfo=$2 pattern=$3 rc=0
    local log=$T_DIR/worker-$name.log
    PGSCRIBE_PG_CONNINFO=$conninfo timeout 60 "$PGSCRIBE_BIN" run -c "$T_CONF" >"$log" 2>&1 ||
        rc=$?
    [ $rc -eq 4 ] || fail "$name: worker exited with $rc, expected 4: $(tail -n 3 "$log")"
    [ "$(grep -c 'cannot start' "$log")" -eq 1 ] || fail "$name: no single 'cannot start' line"
    grep 'cannot start' "$log" | grep -Eq "$pattern" ||
        fail "$name: the refusal does not say /$pattern/: $(grep 'cannot start' "$log")"
    grep -q "assigned [0-9]* partition" "$log" && fail "$name: the worker joined the group"
    note "$name refused: $(grep 'cannot start' "$log" | sed 's/.*cannot start: //')"
}

# --- roles that row-level security does not bind
ADMIN_CONNINFO="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
expect_refusal superuser "$ADMIN_CONNINFO" 'role .{1,2}postgres.{1,2} is a superuser'

cleanup_roles
pgs_psql "$T_DB" -c "CREATE ROLE $BYPASS_ROLE LOGIN BYPASSRLS;
    GRANT pgscribe_worker TO $BYPASS_ROLE" >/dev/null
expect_refusal bypassrls "host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=$BYPASS_ROLE" \
    "role .{1,2}$BYPASS_ROLE.{1,2} is BYPASSRLS"

pgs_psql "$T_DB" -c "ALTER TABLE clinic.encounters OWNER TO pgscribe_worker" >/dev/null
expect_refusal owner "$WORKER_CONNINFO" 'owns entity table clinic.encounters'
pgs_psql "$T_DB" -c "ALTER TABLE clinic.encounters OWNER TO postgres" >/dev/null

# --- a database older than the worker: refused at start, never a dead letter
# for each command that names what the migration would have made
pgs_psql "$T_DB" -c "ALTER FUNCTION pgscribe.expect_same_command(uuid, bytea, bytea)
    RENAME TO expect_same_command_moved" >/dev/null
expect_refusal old_schema "$WORKER_CONNINFO" 'lacks pgscribe.expect_same_command\(\) \(migration 0009\).*pgscribe migrate'
pgs_psql "$T_DB" -c "ALTER FUNCTION pgscribe.expect_same_command_moved(uuid, bytea, bytea)
    RENAME TO expect_same_command" >/dev/null

# --- tables that are not entities, and one whose key omits clinic_id
pgs_psql "$T_DB" <<'SQL' >/dev/null
CREATE TABLE clinic.unforced (id uuid, clinic_id text NOT NULL, body text,
                              PRIMARY KEY (clinic_id, id));
ALTER TABLE clinic.unforced ENABLE ROW LEVEL SECURITY;
CREATE POLICY walled ON clinic.unforced
    USING (clinic_id = current_setting('pgscribe.clinic_id', true));

CREATE TABLE clinic.open_policy (id uuid, clinic_id text NOT NULL, body text,
                                 PRIMARY KEY (clinic_id, id));
ALTER TABLE clinic.open_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinic.open_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY walled ON clinic.open_policy
    USING (clinic_id = current_setting('pgscribe.clinic_id', true));
CREATE POLICY everyone ON clinic.open_policy FOR SELECT USING (true);

CREATE TABLE clinic.no_policy (id uuid, clinic_id text NOT NULL, body text,
                               PRIMARY KEY (clinic_id, id));
ALTER TABLE clinic.no_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinic.no_policy FORCE ROW LEVEL SECURITY;

-- a permissive policy for another role does not open the worker's view
CREATE TABLE clinic.reporting (id uuid, clinic_id text NOT NULL, body text,
                               PRIMARY KEY (clinic_id, id));
ALTER TABLE clinic.reporting ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinic.reporting FORCE ROW LEVEL SECURITY;
CREATE POLICY walled ON clinic.reporting
    USING (clinic_id = current_setting('pgscribe.clinic_id', true));
CREATE POLICY analysts ON clinic.reporting FOR SELECT TO pg_monitor USING (true);

CREATE TABLE clinic.legacy (id uuid PRIMARY KEY, clinic_id text NOT NULL, body text);
ALTER TABLE clinic.legacy ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinic.legacy FORCE ROW LEVEL SECURITY;
CREATE POLICY walled ON clinic.legacy
    USING (clinic_id = current_setting('pgscribe.clinic_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE
    ON clinic.unforced, clinic.open_policy, clinic.no_policy, clinic.legacy, clinic.reporting
    TO pgscribe_worker;
SQL

# --- the commands: A's patient, B's patient under the same id, one each for
# the tables that are not entities
PID_SHARED=0a110000-0000-4000-8000-000000000001
PID_OWN=0a110000-0000-4000-8000-000000000002
cmd() { # N CLINIC ENTITY DATA
    printf '{"command_id": "3a11c0de-0000-4000-8000-%012d", "clinic_id": "%s", "actor": "user:walls", "entity": "%s", "op": "INSERT", "key": {"id": "%s"}, "data": %s, "issued_at": 1700000000000}\n' \
        "$1" "$2" "$3" "$PID_SHARED" "$4"
}
{
    cmd 1 clinic-a patients '{"given_name": "A-NAME", "family_name": "A-FAMILY"}'
    cmd 2 clinic-b patients '{"given_name": "B-NAME"}'
    cmd 3 clinic-a unforced '{"body": "x"}'
    cmd 4 clinic-a open_policy '{"body": "x"}'
    cmd 5 clinic-a no_policy '{"body": "x"}'
    # the clinic part of a key may repeat the command's clinic, never name another
    printf '%s\n' '{"command_id": "3a11c0de-0000-4000-8000-000000000006", "clinic_id": "clinic-b", "actor": "user:walls", "entity": "patients", "op": "UPSERT", "key": {"clinic_id": "clinic-b", "id": "'"$PID_OWN"'"}, "data": {"given_name": "B-OWN"}, "issued_at": 1700000000000}'
    printf '%s\n' '{"command_id": "3a11c0de-0000-4000-8000-000000000007", "clinic_id": "clinic-b", "actor": "user:walls", "entity": "patients", "op": "UPDATE", "key": {"clinic_id": "clinic-a", "id": "'"$PID_SHARED"'"}, "data": {"given_name": "B-EVIL"}, "issued_at": 1700000000000}'
} >"$T_DIR/commands.jsonl"
out=$("$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.jsonl" --no-progress 2>&1)
echo "$out" | grep -q "^produced 7 commands.* 0 failed" || fail "produce: $out"

pgs_worker_start a
log=$T_DIR/worker-a.log
for reason in "table clinic.unforced is not an entity: row-level security not forced" \
    "table clinic.open_policy is not an entity: a permissive policy does not use" \
    "table clinic.no_policy is not an entity: no policy uses" \
    "entity clinic.legacy: primary key omits clinic_id"; do
    grep -F "$reason" "$log" | grep -q 'level=warn' || fail "start log lacks a warning: $reason"
done
for t in patients appointments encounters prescriptions reporting; do
    grep -q "table clinic.$t is not an entity" "$log" && fail "clinic.$t was refused"
    grep -q "entity clinic.$t: primary key omits" "$log" && fail "clinic.$t: key still omits clinic_id"
    grep -q "entity clinic.$t: [0-9]* columns" "$log" || fail "clinic.$t is not an entity"
done

pgs_wait_applied 3 120
deadline=$((SECONDS + 120))
until [ "$(pgs_dlq_count)" -ge 4 ]; do
    [ $SECONDS -lt $deadline ] || fail "only $(pgs_dlq_count) of 4 dead letters within 120 s"
    sleep 1
done
pgs_worker_stop "$W_PID"

python3 - "$T_DIR/dlq.jsonl" <<'PY' || fail "dead letters differ (see above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
problems = []
if len(rows) != 4:
    problems.append("%d dead letters, expected 4" % len(rows))
codes = sorted((r.get("class"), r.get("code")) for r in rows)
want = [("tenant", "TENANT_MISMATCH")] + [("validate", "VALIDATE_UNKNOWN_ENTITY")] * 3
if codes != want:
    problems.append("dead letters %s, expected %s" % (codes, want))
for r in rows:
    if any(v in json.dumps(r) for v in ("A-NAME", "B-EVIL", "patients_pkey")):
        problems.append("dead letter names another clinic's data: %s" % json.dumps(r))
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# Both clinics hold their own row under the shared id; A's is unchanged.
got=$(pgs_scalar "$T_DB" "SELECT string_agg(clinic_id || '=' || given_name || '/' ||
    coalesce(family_name, '-') || '/v' || version, ',' ORDER BY clinic_id)
    FROM clinic.patients WHERE id = '$PID_SHARED'")
[ "$got" = "clinic-a=A-NAME/A-FAMILY/v1,clinic-b=B-NAME/-/v1" ] ||
    fail "rows under the shared id: $got"
got=$(pgs_scalar "$T_DB" "SELECT clinic_id || '=' || given_name FROM clinic.patients WHERE id = '$PID_OWN'")
[ "$got" = "clinic-b=B-OWN" ] || fail "the UPSERT naming its own clinic in key: $got"
for t in unforced open_policy no_policy; do
    [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.$t")" = 0 ] || fail "clinic.$t was written"
done

# Least privilege: the worker role stores audit events but cannot read them,
# nor the idempotency records beyond their ids.
err=$(psql -X -q -d "$WORKER_CONNINFO" -At -c "SELECT actor, details FROM audit.events" 2>&1) &&
    fail "the worker role read audit.events: $err"
echo "$err" | grep -q "permission denied" || fail "audit.events: unexpected error: $err"
err=$(psql -X -q -d "$WORKER_CONNINFO" -At -c "SELECT topic FROM pgscribe.applied_commands" 2>&1) &&
    fail "the worker role read applied_commands.topic: $err"
echo "$err" | grep -q "permission denied" || fail "applied_commands: unexpected error: $err"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count 20 --no-progress >/dev/null
pgs_worker_start b
deadline=$((SECONDS + 120))
until [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'event'")" -ge 20 ]; do
    [ $SECONDS -lt $deadline ] || fail "audit events not stored without SELECT on audit.events"
    sleep 0.5
done
pgs_worker_stop "$W_PID"
echo "ok: superuser, BYPASSRLS and owner refused; 3 walled-off tables refused with reasons;" \
    "clinic B's insert of clinic A's id is its own row; key.clinic_id of another clinic is" \
    "a tenant dead letter; audit.events unreadable by the worker"
