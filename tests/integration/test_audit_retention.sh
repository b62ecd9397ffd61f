#!/usr/bin/env bash
# Audit retention. Four clinics get chains that start eight years ago: two
# old months (2018-01, 2018-02; c-c and c-d have no rows in the second) are
# filled as a superuser by the same link computation audit.chain() makes,
# but with recorded_at set in the past (audit.chain() always takes the
# current time, so the test inserts the rows itself: prev_hash and hash are
# sha256(prev_hash || audit.canonical(row)), exactly as the function does).
# Then the worker role appends current events through audit.append_events,
# so the chains of c-a, c-b and c-c continue across the months; c-d's chain
# lies entirely in 2018-01, so after archiving its head is its boundary. An
# ended month inside the retention (2024-01, empty) must stay.
#
# `audit archive --dry-run` lists the two old months and changes nothing; the
# worker role cannot run the archive path (permission denied); `audit
# archive`, run as a login role with SELECT on audit.events and the retention
# role only, writes the files and manifests, `verify --archive` passes on
# each, the old partitions and their event ids are gone, and `audit verify`
# (and docs/audit_verify.py) passes on what remains from the archived
# boundaries. A flipped byte, a changed row (recompressed, manifest checksum
# updated) and a wrong row count each make `verify --archive` exit 1; a
# remaining first event whose prev_hash was changed makes both verifiers
# exit 1.
. "$(dirname "$0")/lib.sh"
pgs_test_init audit_retention
PY=${PGS_PYTHON:-/usr/bin/python3}
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
WORKER="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgscribe_worker"
wq() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$WORKER" "$@"; }
ARCH=$T_DIR/archive

# --- the old months, as a superuser
pgs_psql "$T_DB" <<'SQL' >/dev/null
DO $$
DECLARE
    m timestamptz;
    name text;
BEGIN
    FOREACH m IN ARRAY ARRAY['2018-01-01 00:00+00', '2018-02-01 00:00+00',
                             '2024-01-01 00:00+00']::timestamptz[] LOOP
        name := 'events_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
        EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events FOR VALUES FROM (%L) TO (%L)',
                       name, m, m + interval '1 month');
        EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', name);
    END LOOP;
END $$;
DO $$
DECLARE
    m timestamptz;
    c text;
    r audit.events;
    v_seq bigint;
    v_hash bytea;
    eid uuid;
BEGIN
    FOREACH m IN ARRAY ARRAY['2018-01-01 00:00+00', '2018-02-01 00:00+00']::timestamptz[] LOOP
        FOREACH c IN ARRAY ARRAY['c-a', 'c-b', 'c-c', 'c-d'] LOOP
            CONTINUE WHEN c IN ('c-c', 'c-d') AND m = '2018-02-01 00:00+00';
            SELECT h.seq, h.hash INTO v_seq, v_hash FROM audit.chain_heads h WHERE h.clinic_id = c;
            IF NOT FOUND THEN
                v_seq := 0;
                v_hash := decode(repeat('00', 32), 'hex');
                INSERT INTO audit.chain_heads VALUES (c, 0, v_hash, '-infinity');
            END IF;
            FOR i IN 1..20 LOOP
                IF i % 3 = 0 THEN -- a write audit: column names, one with a comma and quotes
                    r := ROW(c, v_seq + 1, 'write', NULL, gen_random_uuid(), m + i * interval '1 minute',
                             m + i * interval '1 hour', 'svc-' || i, 'UPDATE', 'patients',
                             '{"id": "p' || i || '"}', ARRAY['name', 'a, "b"', ''], NULL, NULL, NULL,
                             NULL, NULL, NULL, 'clinic.commands', 1, i, NULL, NULL, NULL)::audit.events;
                ELSE
                    eid := gen_random_uuid();
                    r := ROW(c, v_seq + 1, 'event', eid, NULL, m + i * interval '1 minute',
                             m + i * interval '1 hour', 'dr-' || i, 'DISCLOSE', 'patients', 'p' || i,
                             NULL, 'SUCCESS', CASE WHEN i % 2 = 0 THEN '' END, 'care',
                             E'line one, "two"\nline three', 'ehr', '{"k": "v\\t"}', 'clinic.audit', 0, i,
                             '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', NULL, NULL)::audit.events;
                    INSERT INTO audit.event_ids VALUES (eid, c, r.recorded_at);
                END IF;
                r.prev_hash := v_hash;
                v_hash := sha256(v_hash || audit.canonical(r));
                r.hash := v_hash;
                v_seq := v_seq + 1;
                INSERT INTO audit.events SELECT r.*;
            END LOOP;
            UPDATE audit.chain_heads SET seq = v_seq, hash = v_hash, recorded_at = m + interval '20 hours'
             WHERE clinic_id = c;
        END LOOP;
    END LOOP;
END $$;
SQL

# --- today's events of the same clinics, as the worker role
for c in c-a c-b c-c; do # not c-d
    wq -At -c "BEGIN" -c "SELECT set_config('pgscribe.clinic_id', '$c', true), audit.lock_head()" \
        -c "SELECT audit.append_events(array_agg('$c'::text), array_agg(gen_random_uuid()),
            array_agg('dr-' || i), array_agg('READ'::text), array_agg('patients'::text), array_agg('p' || i),
            array_agg('SUCCESS'::text), array_agg(1764633600000 + i), array_agg('ehr'::text),
            array_agg('{}'::jsonb), array_agg(0), array_agg(i::bigint), 'clinic.audit',
            array_agg(NULL::text), array_agg(NULL::text), array_agg(NULL::text), array_agg(NULL::text))
            FROM generate_series(1, 10) i" -c "COMMIT" >/dev/null
done
got=$(pgs_scalar "$T_DB" "SELECT string_agg(clinic_id || ':' || seq, ' ' ORDER BY clinic_id) FROM audit.chain_heads")
[ "$got" = "c-a:50 c-b:50 c-c:30 c-d:20" ] || fail "chain heads: $got"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/before.out" ||
    fail "the trail does not verify before archiving: $(cat "$T_DIR/before.out")"

parts() { pgs_scalar "$T_DB" "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit.events'::regclass AND c.relname < 'events_2025'"; }
[ "$(parts)" = "events_2018_01 events_2018_02 events_2024_01" ] || fail "partitions before: $(parts)"

# --- dry run: lists, changes nothing
"$PGSCRIBE_BIN" audit archive --dry-run --dir "$ARCH" --retention 7y --conninfo "$ADMIN" >"$T_DIR/dry.out" ||
    fail "dry run failed: $(cat "$T_DIR/dry.out")"
grep -q "would archive audit.events_2018_01 .*: 80 rows" "$T_DIR/dry.out" || fail "dry run: $(cat "$T_DIR/dry.out")"
grep -q "would archive audit.events_2018_02 .*: 40 rows" "$T_DIR/dry.out" || fail "dry run: $(cat "$T_DIR/dry.out")"
! grep -q "2024_01" "$T_DIR/dry.out" || fail "dry run lists a month inside the retention"
[ "$(parts)" = "events_2018_01 events_2018_02 events_2024_01" ] || fail "the dry run dropped: $(parts)"
[ ! -e "$ARCH" ] || fail "the dry run wrote $(ls "$ARCH")"
note "dry run: $(tail -n 1 "$T_DIR/dry.out")"

# --- the worker role cannot run the archive path
if "$PGSCRIBE_BIN" audit archive --dir "$T_DIR/w" --retention 7y --conninfo "$WORKER" >"$T_DIR/w.out" 2>"$T_DIR/w.err"; then
    fail "the worker role archived: $(cat "$T_DIR/w.out")"
fi
grep -q "permission denied" "$T_DIR/w.err" || fail "worker archive: $(cat "$T_DIR/w.err")"
for sql in "SET ROLE pgscribe_audit_retention" \
    "SELECT audit.retire_partition('audit.events_2018_01', 80, sha256(''))" \
    "SELECT audit.drop_partition('audit.events_2018_01')" "SELECT count(*) FROM audit.archived_boundaries"; do
    if wq -c "$sql" >/dev/null 2>"$T_DIR/w.err"; then fail "the worker role may: $sql"; fi
    grep -q "permission denied" "$T_DIR/w.err" || fail "worker '$sql': $(cat "$T_DIR/w.err")"
done
[ "$(parts)" = "events_2018_01 events_2018_02 events_2024_01" ] || fail "the worker's attempt dropped: $(parts)"
# nor the owner without the retention setting
if pgs_psql "$T_DB" -c "SELECT audit.retire_partition('audit.events_2018_01', 80, sha256(''))" >/dev/null 2>"$T_DIR/o.err"; then
    fail "retire_partition ran without pgscribe.audit_retention"
fi

# --- archive, as a login role that is no superuser: it reads audit.events and
# is granted pgscribe_audit_retention, nothing more
pgs_psql "$T_DB" >/dev/null <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgs_t_archiver') THEN
        CREATE ROLE pgs_t_archiver LOGIN NOSUPERUSER;
    END IF;
END $$;
GRANT USAGE ON SCHEMA audit TO pgs_t_archiver;
GRANT SELECT ON audit.events TO pgs_t_archiver;
GRANT pgscribe_audit_retention TO pgs_t_archiver;
SQL
ARCHIVER="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgs_t_archiver"
"$PGSCRIBE_BIN" audit archive --dir "$ARCH" --retention 7y --conninfo "$ARCHIVER" >"$T_DIR/arch.out" 2>&1 ||
    fail "archive failed: $(cat "$T_DIR/arch.out")"
note "$(cat "$T_DIR/arch.out")"
[ "$(parts)" = "events_2024_01" ] || fail "partitions after archiving: $(parts)"
for m in 2018-01 2018-02; do
    f=$ARCH/audit-events-$m.csv.gz
    [ -s "$f" ] && [ -s "$ARCH/audit-events-$m.manifest.json" ] || fail "$m: archive or manifest missing: $(ls "$ARCH")"
    "$PGSCRIBE_BIN" audit verify --archive "$f" >"$T_DIR/va.out" || fail "$m: $(cat "$T_DIR/va.out")"
done
ls "$ARCH" | grep -q tmp && fail "temporary files left: $(ls "$ARCH")"
"$PY" - "$ARCH" <<'PYEOF' || fail "archive contents"
import csv, gzip, hashlib, json, sys
d = sys.argv[1]
for month, rows, clinics in (("2018-01", 80, {"c-a": (1, 20), "c-b": (1, 20), "c-c": (1, 20), "c-d": (1, 20)}),
                             ("2018-02", 40, {"c-a": (21, 40), "c-b": (21, 40)})):
    m = json.load(open(f"{d}/audit-events-{month}.manifest.json"))
    data = open(f"{d}/audit-events-{month}.csv.gz", "rb").read()
    assert m["sha256"] == hashlib.sha256(data).hexdigest(), month
    assert m["rows"] == rows and m["partition"] == "audit.events_" + month.replace("-", "_"), m
    assert m["from"].startswith(month) and m["system_identifier"].isdigit(), m
    got = {c["clinic_id"]: (c["first_seq"], c["last_seq"]) for c in m["clinics"]}
    assert got == clinics, (month, got)
    recs = list(csv.reader(gzip.open(f"{d}/audit-events-{month}.csv.gz", "rt", newline="")))
    assert len(recs) == rows + 1 and recs[0][0] == "clinic_id", len(recs)
    for c in m["clinics"]:  # the manifest's boundaries are the file's
        mine = [r for r in recs[1:] if r[0] == c["clinic_id"]]
        assert mine[0][22] == c["first_prev_hash"] and mine[-1][23] == c["last_hash"], c
print("manifests ok")
PYEOF
got=$(pgs_scalar "$T_DB" "SELECT string_agg(clinic_id || ':' || seq || ':' || partition, ' ' ORDER BY clinic_id, seq) FROM audit.archived_boundaries")
[ "$got" = "c-a:20:audit.events_2018_01 c-a:40:audit.events_2018_02 c-b:20:audit.events_2018_01 c-b:40:audit.events_2018_02 c-c:20:audit.events_2018_01 c-d:20:audit.events_2018_01" ] ||
    fail "archived boundaries: $got"
got=$(pgs_scalar "$T_DB" "SELECT (SELECT count(*) FROM audit.event_ids) || ' ' || (SELECT count(*) FROM audit.events WHERE kind = 'event')")
[ "$got" = "30 30" ] || fail "event ids left / events left: $got (the archived months' ids must be gone)"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/after.out" ||
    fail "what remains does not verify from the archived boundaries: $(cat "$T_DIR/after.out")"
grep -q "verified 30 rows of 4 clinics" "$T_DIR/after.out" || fail "after: $(cat "$T_DIR/after.out")"
"$PY" "$REPO/docs/audit_verify.py" "$ADMIN" >"$T_DIR/after.py.out" ||
    fail "the Python verifier rejects what remains: $(cat "$T_DIR/after.py.out")"
# a second run finds nothing more to do
"$PGSCRIBE_BIN" audit archive --dir "$ARCH" --retention 7y --conninfo "$ADMIN" >"$T_DIR/again.out" ||
    fail "second archive run: $(cat "$T_DIR/again.out")"
grep -q "no month" "$T_DIR/again.out" || fail "second run: $(cat "$T_DIR/again.out")"

# --- a flipped byte
T=$T_DIR/tamper
mkdir -p "$T"
cp "$ARCH"/audit-events-2018-01.* "$T/"
"$PY" -c "
import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x01; open(p, 'wb').write(b)" \
    "$T/audit-events-2018-01.csv.gz"
if "$PGSCRIBE_BIN" audit verify --archive "$T/audit-events-2018-01.csv.gz" >"$T_DIR/flip.out"; then
    fail "a flipped byte verified: $(cat "$T_DIR/flip.out")"
fi
grep -q "SHA-256 mismatch" "$T_DIR/flip.out" || fail "flipped byte: $(cat "$T_DIR/flip.out")"
# a changed row, recompressed, with the manifest's checksum updated: the chain inside catches it
cp "$ARCH"/audit-events-2018-01.* "$T/"
"$PY" - "$T" <<'PYEOF'
import gzip, hashlib, json, sys
d = sys.argv[1]
p, mp = f"{d}/audit-events-2018-01.csv.gz", f"{d}/audit-events-2018-01.manifest.json"
text = gzip.open(p, "rt", newline="").read().replace("c-b,7,event", "c-b,7,event", 1)
lines = text.split("\n")
i = next(n for n, l in enumerate(lines) if l.startswith("c-b,7,"))
lines[i] = lines[i].replace(",dr-7,", ",mallory,", 1)
open(p, "wb").write(gzip.compress("\n".join(lines).encode()))
m = json.load(open(mp)); m["sha256"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
json.dump(m, open(mp, "w"))
PYEOF
if "$PGSCRIBE_BIN" audit verify --archive "$T/audit-events-2018-01.csv.gz" >"$T_DIR/row.out"; then
    fail "a changed row verified: $(cat "$T_DIR/row.out")"
fi
grep -q "clinic c-b seq 7: hash does not match" "$T_DIR/row.out" || fail "changed row: $(cat "$T_DIR/row.out")"
# a manifest whose row count is wrong
cp "$ARCH"/audit-events-2018-01.* "$T/"
"$PY" -c "
import json, sys; p = sys.argv[1]; m = json.load(open(p)); m['rows'] = 79; json.dump(m, open(p, 'w'))" \
    "$T/audit-events-2018-01.manifest.json"
if "$PGSCRIBE_BIN" audit verify --archive "$T/audit-events-2018-01.csv.gz" >"$T_DIR/rows.out"; then
    fail "a wrong row count verified: $(cat "$T_DIR/rows.out")"
fi
grep -q "row count mismatch" "$T_DIR/rows.out" || fail "row count: $(cat "$T_DIR/rows.out")"

# --- a remaining first event whose prev_hash no longer links to the boundary
pgs_psql "$T_DB" -c "BEGIN" -c "SET LOCAL session_replication_role = replica" \
    -c "UPDATE audit.events SET prev_hash = sha256('x') WHERE clinic_id = 'c-a' AND seq = 41" -c "COMMIT" >/dev/null
if "$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/tampered.out"; then
    fail "a first event not linked to the archived boundary verified: $(cat "$T_DIR/tampered.out")"
fi
grep -q "broken: clinic c-a seq 41: prev_hash is not the archived boundary's hash" "$T_DIR/tampered.out" ||
    fail "tampered first event: $(cat "$T_DIR/tampered.out")"
grep -q "1 broken" "$T_DIR/tampered.out" || fail "only c-a is broken: $(cat "$T_DIR/tampered.out")"
note "tampered: $(grep broken: "$T_DIR/tampered.out")"
if "$PY" "$REPO/docs/audit_verify.py" "$ADMIN" >"$T_DIR/tampered.py.out"; then
    fail "the Python verifier accepts the tampered first event: $(cat "$T_DIR/tampered.py.out")"
fi
grep -q "broken: clinic c-a seq 41: prev_hash" "$T_DIR/tampered.py.out" ||
    fail "Python verifier, tampered first event: $(cat "$T_DIR/tampered.py.out")"
echo "PASS audit_retention"
