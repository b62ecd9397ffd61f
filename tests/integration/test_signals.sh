#!/usr/bin/env bash
# Signals and exit codes of `pgscribe run`: SIGHUP reloads the reloadable
# keys and the catalog (a new table becomes an entity), keeps the whole old
# config when the new file is invalid, and names the keys that need a
# restart; the worker keeps applying throughout; SIGTERM exits 0; a bad config
# exits 3 and an unreachable database exits 4, as the exit-code table in docs/operations.md says.
. "$(dirname "$0")/lib.sh"
pgs_test_init signals

# exit codes at start
bad=$T_DIR/bad.conf
printf '[apply]\nmax_batch = 0\n' >"$bad"
rc=0
"$PGSCRIBE_BIN" run -c "$bad" >"$T_DIR/bad.log" 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "invalid config: exit $rc, expected 3"
grep -q "bad.conf:2: apply.max_batch" "$T_DIR/bad.log" || fail "invalid config: no file:line error"
rc=0
PGSCRIBE_PG_CONNINFO="host=$T_DIR/nowhere port=1 dbname=x user=x connect_timeout=2" \
    "$PGSCRIBE_BIN" run -c "$T_CONF" >"$T_DIR/nodb.log" 2>&1 || rc=$?
[ $rc -eq 4 ] || fail "unreachable database: exit $rc, expected 4"

pgs_worker_start a
log=$T_DIR/worker-a.log
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count 2000 --clinics 5 --seed 41 --no-progress 2>/dev/null
pgs_wait_applied 2000 120

# 1. a valid change: log.level is reloadable, apply.max_batch is not
cp "$T_CONF" "$T_DIR/orig.conf"
printf '[log]\nlevel = debug\n[apply]\nmax_batch = 50\n' >>"$T_CONF"
# and a new table that qualifies as an entity
pgs_psql "$T_DB" -c "CREATE TABLE clinic.vitals (id uuid PRIMARY KEY, clinic_id text NOT NULL,
    pulse int, version bigint NOT NULL DEFAULT 1);
    ALTER TABLE clinic.vitals ENABLE ROW LEVEL SECURITY; ALTER TABLE clinic.vitals FORCE ROW LEVEL SECURITY;
    CREATE POLICY clinic_isolation ON clinic.vitals USING (clinic_id = current_setting('pgscribe.clinic_id', true))
    WITH CHECK (clinic_id = current_setting('pgscribe.clinic_id', true));
    GRANT SELECT, INSERT, UPDATE, DELETE ON clinic.vitals TO pgscribe_worker;" >/dev/null
kill -HUP "$W_PID"
deadline=$((SECONDS + 20))
until grep -q "SIGHUP: configuration reloaded" "$log"; do
    [ $SECONDS -lt $deadline ] || fail "no reload after SIGHUP"
    sleep 0.2
done
# the catalog loads on a helper thread: it may come after the config
until grep -q "SIGHUP: catalog reloaded, 5 entities" "$log"; do
    [ $SECONDS -lt $deadline ] || fail "catalog not reloaded with the new table"
    sleep 0.2
done
grep -q "need a restart and were kept: .*apply.max_batch" "$log" ||
    fail "apply.max_batch change not reported as needing a restart"
# the new entity is accepted after the reload
printf '{"command_id":"8f1c2d3e-4b5a-4c6d-8e7f-001122334455","clinic_id":"clinic-001","actor":"svc-test","entity":"vitals","op":"INSERT","key":{"id":"5b1f6a2e-0000-4000-8000-000000000001"},"data":{"pulse":72},"issued_at":1700000000000}\n' >"$T_DIR/vitals.jsonl"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/vitals.jsonl" --no-progress 2>/dev/null
pgs_wait_applied 2001 60
[ "$(pgs_scalar "$T_DB" "SELECT pulse FROM clinic.vitals")" = 72 ] || fail "vitals row not applied"
grep -q "level=debug" "$log" || fail "log.level=debug did not take effect"

# 2. an invalid file: the whole old config stays, the worker keeps working
printf '[apply]\nmax_batch = lots\n' >>"$T_CONF"
kill -HUP "$W_PID"
deadline=$((SECONDS + 20))
until grep -q "SIGHUP: new config is invalid, keeping the old one" "$log"; do
    [ $SECONDS -lt $deadline ] || fail "invalid config on SIGHUP not reported"
    sleep 0.2
done
"$PGSCRIBE_BIN" produce -c "$T_DIR/orig.conf" --count 500 --clinics 5 --seed 43 --no-progress 2>/dev/null
pgs_wait_applied 2501 120
kill -0 "$W_PID" || fail "worker died after an invalid reload"

# 3. SIGTERM: clean stop, exit 0
pgs_worker_stop "$W_PID"
grep -q "stopped: consumed=2501" "$log" || fail "stop summary missing or wrong: $(grep stopped: "$log")"
echo "ok: exit 3 on a bad config, 4 without a database; SIGHUP reloaded log.level and the catalog (new entity applied), kept apply.max_batch, kept the old config on an invalid file; SIGTERM exit 0"
