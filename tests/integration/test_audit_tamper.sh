#!/usr/bin/env bash
# Tampering with the audit trail. Six clinics each get a chain of 50 events
# appended by the worker role (audit.append_events, 5 batches of 10). Then a
# superuser, with the triggers off inside the tamper transaction as an
# attacker would, changes one row, deletes one, swaps two rows' content, cuts
# the tail (head kept), cuts the tail and rolls the head back. Both
# `pgscribe audit verify` and docs/audit_verify.py must report each at its
# exact first broken link and exit 1; the untouched clinic verifies. The
# worker role's UPDATE, DELETE and TRUNCATE are refused (42501), the owner's
# by the trigger (PS004); a month without a partition fails with 23514 in
# schema audit (what the worker retries).
. "$(dirname "$0")/lib.sh"
pgs_test_init audit_tamper
PY=${PGS_PYTHON:-/usr/bin/python3}
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
WORKER="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgscribe_worker"
wq() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$WORKER" "$@"; }

# append CLINIC BATCH: 10 events of CLINIC, as the worker role
append() {
    wq -At -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', '$1', true), audit.lock_head()" \
        -c "SELECT audit.append_events(array_agg('$1'::text), array_agg(gen_random_uuid()),
            array_agg('dr-' || i), array_agg('READ'::text), array_agg('patients'::text), array_agg('p' || i),
            array_agg('SUCCESS'::text), array_agg(1764633600000 + i), array_agg('ehr'::text),
            array_agg('{\"k\": \"v\\\\\\\\t\"}'::jsonb), array_agg(0), array_agg($2 * 10 + i::bigint),
            'clinic.audit', array_agg(NULL::text), array_agg(NULL::text), array_agg(NULL::text),
            array_agg(NULL::text)) FROM generate_series(1, 10) i" -c "COMMIT" >/dev/null
}
CLINICS="t-clean t-update t-delete t-swap t-tail t-tail-head"
for b in 0 1 2 3 4; do
    for c in $CLINICS; do append "$c" "$b"; done
done
for c in $CLINICS; do
    got=$(pgs_scalar "$T_DB" "SELECT count(*) || ' ' || max(seq) FROM audit.events WHERE clinic_id = '$c'")
    [ "$got" = "50 50" ] || fail "$c: chain holds $got, expected 50 rows up to seq 50"
done

"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/clean.out" ||
    fail "the untampered trail does not verify: $(cat "$T_DIR/clean.out")"
"$PY" "$REPO/docs/audit_verify.py" "$ADMIN" >"$T_DIR/clean.py.out" ||
    fail "the Python verifier rejects the untampered trail: $(cat "$T_DIR/clean.py.out")"
note "untampered: $(tail -n 1 "$T_DIR/clean.out")"

# --- refusals, before the tampering
cur=$(pgs_scalar "$T_DB" "SELECT 'audit.events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")
for sql in "UPDATE audit.events SET actor = 'x' WHERE seq = 1" "DELETE FROM audit.events WHERE seq = 1" \
    "TRUNCATE audit.events" "TRUNCATE $cur" "UPDATE audit.chain_heads SET seq = 0" \
    "SELECT count(*) FROM audit.events"; do
    if wq -c "$sql" >/dev/null 2>"$T_DIR/w.err"; then fail "the worker role may: $sql"; fi
    grep -q "permission denied" "$T_DIR/w.err" || fail "worker '$sql': $(cat "$T_DIR/w.err")"
done
for sql in "UPDATE audit.events SET actor = 'x' WHERE seq = 1" "DELETE FROM audit.events WHERE seq = 1" \
    "TRUNCATE audit.events" "TRUNCATE $cur"; do
    if pgs_psql "$T_DB" -v VERBOSITY=verbose -c "$sql" >/dev/null 2>"$T_DIR/o.err"; then
        fail "the owner may: $sql"
    fi
    grep -q "PS004" "$T_DIR/o.err" || fail "owner '$sql' not refused by the trigger: $(cat "$T_DIR/o.err")"
done
# a month without a partition: 23514 in schema audit, which the worker retries
pgs_psql "$T_DB" -c "BEGIN" -c "ALTER TABLE audit.events DETACH PARTITION $cur" -c "COMMIT" >/dev/null
if wq -v VERBOSITY=verbose -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', 't-clean', true)" \
    -c "SELECT audit.append_events(ARRAY['t-clean'], ARRAY[gen_random_uuid()], ARRAY['x'], ARRAY['READ'], ARRAY['t'], ARRAY['r'], ARRAY['SUCCESS'], ARRAY[0::bigint], ARRAY['s'], ARRAY['{}'::jsonb], ARRAY[0], ARRAY[0::bigint], 't', ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text])" \
    -c "COMMIT" >/dev/null 2>"$T_DIR/np.err"; then
    fail "an event was appended to a month without a partition"
fi
grep -q "23514" "$T_DIR/np.err" && grep -qi "schema name: *audit" "$T_DIR/np.err" ||
    fail "no partition: expected 23514 in schema audit: $(cat "$T_DIR/np.err")"
range=$(pgs_scalar "$T_DB" "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD') || '|' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY-MM-DD')")
pgs_psql "$T_DB" -c "ALTER TABLE audit.events ATTACH PARTITION $cur FOR VALUES FROM ('${range%|*} 00:00+00') TO ('${range#*|} 00:00+00')" >/dev/null
# nothing was chained meanwhile: the trail still verifies
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/clean2.out" ||
    fail "after re-attaching: $(cat "$T_DIR/clean2.out")"

# --- tampering, as a superuser with the triggers off
tamper() { pgs_psql "$T_DB" -c "BEGIN" -c "SET LOCAL session_replication_role = replica" -c "$1" -c "COMMIT" >/dev/null; }
tamper "UPDATE audit.events SET actor = 'mallory' WHERE clinic_id = 't-update' AND seq = 17"
tamper "DELETE FROM audit.events WHERE clinic_id = 't-delete' AND seq = 23"
tamper "UPDATE audit.events e SET actor = o.actor, row_key = o.row_key, event_id = o.event_id,
        source_offset = o.source_offset
        FROM audit.events o WHERE e.clinic_id = 't-swap' AND o.clinic_id = 't-swap'
        AND ((e.seq = 30 AND o.seq = 31) OR (e.seq = 31 AND o.seq = 30))"
tamper "DELETE FROM audit.events WHERE clinic_id = 't-tail' AND seq > 45"
tamper "DELETE FROM audit.events WHERE clinic_id = 't-tail-head' AND seq > 45"
pgs_psql "$T_DB" -c "UPDATE audit.chain_heads h SET seq = 45, hash = e.hash, recorded_at = e.recorded_at
    FROM audit.events e WHERE h.clinic_id = 't-tail-head' AND e.clinic_id = h.clinic_id AND e.seq = 45" >/dev/null

rc=0
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" --jobs 3 >"$T_DIR/c.out" || rc=$?
[ $rc -eq 1 ] || fail "pgscribe audit verify exited $rc on a tampered trail: $(cat "$T_DIR/c.out")"
rc=0
"$PY" "$REPO/docs/audit_verify.py" "$ADMIN" >"$T_DIR/py.out" || rc=$?
[ $rc -eq 1 ] || fail "audit_verify.py exited $rc on a tampered trail: $(cat "$T_DIR/py.out")"
cat "$T_DIR/c.out" "$T_DIR/py.out" >&2
for want in "t-update seq 17" "t-delete seq 23" "t-swap seq 30" "t-tail seq 46" "t-tail-head seq 46"; do
    grep -q "^broken: clinic $want:" "$T_DIR/c.out" || fail "pgscribe audit verify did not report '$want'"
    grep -q "^broken: clinic $want:" "$T_DIR/py.out" || fail "audit_verify.py did not report '$want'"
done
for out in c.out py.out; do
    n=$(grep -c '^broken:' "$T_DIR/$out")
    [ "$n" -eq 5 ] || fail "$out: $n broken clinics, expected 5 (t-clean must verify)"
done
grep -q "t-update seq 17: hash does not match the row's content; expected [0-9a-f]\{64\}, found [0-9a-f]\{64\}" \
    "$T_DIR/c.out" || fail "the changed row's report lacks expected and found hashes"

# one clinic, from a boundary inside the chain: its prev_hash is trusted
from=$(pgs_scalar "$T_DB" "SELECT recorded_at FROM audit.events WHERE clinic_id = 't-clean' AND seq = 21")
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" --clinic t-clean --from "$from" >"$T_DIR/from.out" ||
    fail "--from on the clean clinic: $(cat "$T_DIR/from.out")"
grep -q "trusted as the boundary" "$T_DIR/from.out" || fail "--from does not say the boundary is trusted"
grep -q "verified 30 rows of 1 clinics" "$T_DIR/from.out" || fail "--from: $(cat "$T_DIR/from.out")"
rc=0
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" --clinic t-update --from "$from" >"$T_DIR/from2.out" || rc=$?
[ $rc -eq 0 ] || fail "--from after the changed row still reports: $(cat "$T_DIR/from2.out")"
echo "ok: 5 tamperings each reported at their first broken link by both verifiers; worker role" \
    "refused UPDATE/DELETE/TRUNCATE/SELECT, owner refused by the trigger; no partition is 23514 in audit"
