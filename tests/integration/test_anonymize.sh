#!/usr/bin/env bash
# Masked copies end to end (`pgscribe anonymize`, docs/security.md): 3 000
# generated commands over 3 clinics, applied by the real worker with the PHI
# columns field-encrypted (`keys protect`). Every identifying value is a
# planted marker (equal original values get equal markers, so equal values
# can be checked to stay equal); clinical values the policy keeps carry
# markers of their own. Two clinics are copied into a second, migrated
# database. Then: no identifying marker, no original record id and no birth
# date other than 1 January in a pg_dump of the target; the third clinic is
# absent; per clinic, every table's row count and four joins equal the clear
# reference's; equal values have equal pseudonyms (the group sizes match);
# kept columns equal the reference's decrypted values; null columns are
# null. Each clinic copied is an EXPORT event and `audit verify` passes. A
# re-run replaces rather than duplicates; a swapped ciphertext is
# "authentication failed" (exit 1, the target left as it was); the target
# being the source is exit 2; no pseudonym key exit 3. A 150 000-row clinic
# is copied in about the memory of a small one (batches, not the clinic).
. "$(dirname "$0")/lib.sh"
KEYS=$(mktemp -d /tmp/pgscribe-anon-keys.XXXXXX)
KR=$KEYS/keyring
T_EXTRA_CONF=$'[crypto]\nkeyring = '"$KR"
pgs_test_init anonymize
command -v pg_dump >/dev/null || fail "pg_dump is needed"
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
REFC="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_REF_DB user=postgres"
COPY_DB=pgs_t_anonymize_copy
TGT="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$COPY_DB user=postgres"
pgs_psql postgres -c "DROP DATABASE IF EXISTS $COPY_DB WITH (FORCE)" >/dev/null
pgs_psql postgres -c "CREATE DATABASE $COPY_DB" >/dev/null
"$PGSCRIBE_BIN" migrate --dir "$REPO/schemas/sql" --conninfo "$TGT" >/dev/null ||
    fail "migrating the target"

"$PGSCRIBE_BIN" keys rotate --keyring "$KR" >/dev/null 2>&1 || fail "keys rotate (field)"
cp "$KR" "$KEYS/field-only"
chmod 600 "$KEYS/field-only"
"$PGSCRIBE_BIN" keys rotate --keyring "$KR" --purpose pseudonym >/dev/null 2>&1 ||
    fail "keys rotate --purpose pseudonym"
"$PGSCRIBE_BIN" keys protect --keyring "$KR" --conninfo "$ADMIN" >"$T_DIR/protect.out" 2>&1 ||
    fail "keys protect: $(cat "$T_DIR/protect.out")"

# the commands: identifying values become ID markers, kept clinical values
# KEEP markers; one marker per distinct (column, original value)
ID="PHA$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KEEP="KPA$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
total=3000
"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.scratch" --count $total --clinics 3 --seed 47 \
    --emit "$T_DIR/gen.jsonl" --no-progress >/dev/null 2>&1 || fail "generating commands"
python3 - "$ID" "$KEEP" "$T_DIR/gen.jsonl" "$T_DIR/commands.jsonl" >"$T_DIR/plant.out" <<'PY' ||
import json, sys
ident = {"patients": {"mrn", "given_name", "family_name", "phone", "email", "address", "notes"},
         "appointments": {"reason"}, "encounters": {"notes"}}
kept = {"patients": {"sex"}, "encounters": {"diagnosis_code"},
        "prescriptions": {"drug_code", "drug_name", "dose"}}
idp, keepp, src, dst = sys.argv[1:5]
seen, n = {}, [0, 0]
with open(src) as f, open(dst, "w") as out:
    for line in f:
        cmd = json.loads(line)
        ent = cmd.get("entity")
        for name, value in (cmd.get("data") or {}).items():
            if not isinstance(value, str):
                continue
            for k, (cols, prefix) in enumerate(((ident, idp), (kept, keepp))):
                if name in cols.get(ent, ()):
                    key = (ent, name, value)
                    if key not in seen:
                        n[k] += 1
                        seen[key] = "%s%07dZ" % (prefix, n[k])
                    cmd["data"][name] = seen[key]
        out.write(json.dumps(cmd, separators=(",", ":")) + "\n")
print(n[0], n[1])
PY
    fail "planting markers"
read -r nid nkeep <"$T_DIR/plant.out"
note "planted $nid identifying and $nkeep kept distinct markers"
[ "$nid" -gt 500 ] && [ "$nkeep" -gt 10 ] || fail "too few markers planted ($nid, $nkeep)"

pgs_worker_start a
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/commands.jsonl" --no-progress >/dev/null 2>&1 ||
    fail "producing the commands"
pgs_wait_applied $total 300
[ "$(pgs_dlq_count)" -eq 0 ] || fail "$(pgs_dlq_count) dead letters"
pgs_worker_stop "$W_PID"
pgs_reference "$T_DIR/commands.jsonl"
[ "$(pgs_scalar "$T_DB" "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
    WHERE attrelid = 'clinic.patients'::regclass AND attname = 'birth_date'")" = bytea ] ||
    fail "keys protect left clinic.patients.birth_date in clear: the decryption proves nothing"

anon() { "$PGSCRIBE_BIN" anonymize --keyring "$KR" --conninfo "$ADMIN" --no-progress "$@"; }

# refusals first: the source as target, no pseudonym key
rc=0
anon --target "$ADMIN" --clinic clinic-001 >/dev/null 2>"$T_DIR/self.err" || rc=$?
[ $rc -eq 2 ] || fail "anonymize into the source exited $rc, expected 2: $(cat "$T_DIR/self.err")"
grep -q "is the source database" "$T_DIR/self.err" || fail "no clear message: $(cat "$T_DIR/self.err")"
rc=0
"$PGSCRIBE_BIN" anonymize --keyring "$KEYS/field-only" --conninfo "$ADMIN" --no-progress \
    --target "$TGT" --clinic clinic-001 >/dev/null 2>"$T_DIR/nokey.err" || rc=$?
[ $rc -eq 3 ] || fail "anonymize without a pseudonym key exited $rc, expected 3"
grep -q "no pseudonym key" "$T_DIR/nokey.err" || fail "no clear message: $(cat "$T_DIR/nokey.err")"

# the copy of two clinics, with the progress bar
anon --target "$TGT" --clinic clinic-001 --clinic clinic-002 --operator tester --progress \
    --batch 200 >"$T_DIR/anon.out" 2>"$T_DIR/anon.err" ||
    fail "anonymize: $(tail -n 5 "$T_DIR/anon.err")"
grep -q "2 clinic(s)" "$T_DIR/anon.out" || fail "summary: $(cat "$T_DIR/anon.out")"
grep -qE '\[#{20}\] [0-9]+/[0-9]+ clinic.patients clinic-002' "$T_DIR/anon.err" ||
    fail "no finished progress bar on stderr: $(head -c 400 "$T_DIR/anon.err")"
note "$(cat "$T_DIR/anon.out")"

pg_dump -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U postgres -d "$COPY_DB" --data-only -n clinic \
    >"$T_DIR/copy.sql" || fail "pg_dump of the target"
[ "$(grep -c . "$T_DIR/copy.sql")" -gt 500 ] || fail "the target's dump is nearly empty"
! grep -qaF "$ID" "$T_DIR/copy.sql" || fail "the target holds an identifying marker: $(grep -aoF "$ID" "$T_DIR/copy.sql" | head -3)"
grep -qaF "$KEEP" "$T_DIR/copy.sql" || fail "no kept marker in the target: the kept columns were not decrypted and copied"
! grep -qaF "$ID" "$T_DIR/anon.err" "$T_DIR/anon.out" || fail "anonymize printed a marker"
pgs_scalar "$T_REF_DB" "SELECT id FROM clinic.patients UNION ALL SELECT id FROM clinic.appointments
    UNION ALL SELECT id FROM clinic.encounters UNION ALL SELECT id FROM clinic.prescriptions" >"$T_DIR/ids"
[ "$(wc -l <"$T_DIR/ids")" -gt 500 ] || fail "too few record ids in the reference"
! grep -qaF -f "$T_DIR/ids" "$T_DIR/copy.sql" || fail "the target holds an original record id"

q() { pgs_scalar "$1" "$2"; }
[ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.patients WHERE birth_date <> date_trunc('year', birth_date)::date")" = 0 ] ||
    fail "a birth date in the target is not 1 January"
for t in patients appointments encounters prescriptions; do
    [ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.$t WHERE clinic_id NOT IN ('clinic-001', 'clinic-002')")" = 0 ] ||
        fail "clinic.$t of the target holds a clinic not asked for"
done

# per clinic: row counts, joins, group sizes, kept and generalised values
JOINS=(
    "clinic.appointments a JOIN clinic.patients p ON p.id = a.patient_id AND p.clinic_id = a.clinic_id"
    "clinic.encounters e JOIN clinic.patients p ON p.id = e.patient_id AND p.clinic_id = e.clinic_id"
    "clinic.prescriptions r JOIN clinic.patients p ON p.id = r.patient_id AND p.clinic_id = r.clinic_id"
    "clinic.prescriptions r JOIN clinic.encounters e ON e.id = r.encounter_id AND e.clinic_id = r.clinic_id"
    "clinic.encounters e JOIN clinic.appointments a ON a.id = e.appointment_id AND a.clinic_id = e.clinic_id"
)
same() { # WHAT SQL: the reference and the target agree
    local a b
    a=$(q "$T_REF_DB" "$2")
    b=$(q "$COPY_DB" "$2")
    [ "$a" = "$b" ] || fail "$1: reference $a, target $b"
}
joined=0
for c in clinic-001 clinic-002; do
    for t in patients appointments encounters prescriptions; do
        same "$c $t rows" "SELECT count(*) FROM clinic.$t WHERE clinic_id = '$c'"
    done
    for j in "${JOINS[@]}"; do
        alias=${j#* }
        alias=${alias%% *}
        same "$c join ($j)" "SELECT count(*) FROM $j WHERE $alias.clinic_id = '$c'"
        joined=$((joined + $(q "$COPY_DB" "SELECT count(*) FROM $j WHERE $alias.clinic_id = '$c'")))
    done
    for col in family_name given_name mrn; do
        same "$c $col group sizes" "SELECT string_agg(n::text, ',' ORDER BY n) FROM
            (SELECT count(*) n FROM clinic.patients WHERE clinic_id = '$c' GROUP BY $col) s"
    done
    same "$c birth years" "SELECT string_agg(y::text, ',' ORDER BY y) FROM
        (SELECT extract(year FROM birth_date)::int y FROM clinic.patients WHERE clinic_id = '$c') s"
    same "$c kept patients columns" "SELECT md5(string_agg(concat_ws('|', sex, weight_kg, active),
        ',' ORDER BY concat_ws('|', sex, weight_kg, active))) FROM clinic.patients WHERE clinic_id = '$c'"
    same "$c kept encounter columns" "SELECT md5(string_agg(concat_ws('|', kind, started_at, diagnosis_code),
        ',' ORDER BY concat_ws('|', kind, started_at, diagnosis_code))) FROM clinic.encounters WHERE clinic_id = '$c'"
    same "$c kept prescription columns" "SELECT md5(string_agg(concat_ws('|', drug_code, drug_name, dose, quantity),
        ',' ORDER BY concat_ws('|', drug_code, drug_name, dose, quantity))) FROM clinic.prescriptions WHERE clinic_id = '$c'"
done
[ "$joined" -gt 500 ] || fail "only $joined joined rows: the join check proves little"
[ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.patients WHERE family_name !~ '^[0-9a-f]{32}$'")" = 0 ] ||
    fail "a family_name in the target is not a pseudonym"
[ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.patients WHERE address IS NOT NULL OR notes IS NOT NULL
    OR photo IS NOT NULL")" = 0 ] || fail "a column masked null holds a value"
[ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.appointments WHERE reason IS NOT NULL")" = 0 ] ||
    fail "appointments.reason (null) holds a value"

# the EXPORT events, chained: who, where to, how many rows, no value
rows1=$(q "$COPY_DB" "SELECT (SELECT count(*) FROM clinic.patients WHERE clinic_id = 'clinic-001')
    + (SELECT count(*) FROM clinic.appointments WHERE clinic_id = 'clinic-001')
    + (SELECT count(*) FROM clinic.encounters WHERE clinic_id = 'clinic-001')
    + (SELECT count(*) FROM clinic.prescriptions WHERE clinic_id = 'clinic-001')")
[ "$(q "$T_DB" "SELECT count(*) FROM audit.events WHERE action = 'EXPORT' AND clinic_id = 'clinic-001'
    AND details = 'rows=$rows1' AND actor = 'postgres (tester)' AND recipient LIKE '%/$COPY_DB'
    AND 'patients.given_name:pseudonym,decrypted' = ANY(columns)")" = 1 ] ||
    fail "no EXPORT event of clinic-001 with rows=$rows1: $(q "$T_DB" "SELECT actor, recipient, details, columns FROM audit.events WHERE action = 'EXPORT'")"
[ "$(q "$T_DB" "SELECT count(*) FROM audit.events WHERE action = 'EXPORT'")" = 2 ] ||
    fail "expected 2 EXPORT events"
! q "$T_DB" "SELECT row_to_json(e) FROM audit.events e WHERE action = 'EXPORT'" | grep -qF "$ID" ||
    fail "an EXPORT event holds a marker"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/verify.out" 2>&1 ||
    fail "audit verify after the EXPORT events: $(cat "$T_DIR/verify.out")"

# a re-run replaces the clinic's copy
anon --target "$TGT" --clinic clinic-001 >/dev/null 2>"$T_DIR/again.err" ||
    fail "anonymize again: $(tail -n 3 "$T_DIR/again.err")"
same "clinic-001 patients after a re-run" "SELECT count(*) FROM clinic.patients WHERE clinic_id = 'clinic-001'"
before=$(q "$COPY_DB" "SELECT md5(string_agg(id::text || family_name, ',' ORDER BY id)) FROM clinic.patients")

# a ciphertext swapped between two rows: authentication failed, nothing changed
read -r pa pb < <(q "$T_DB" "SELECT string_agg(id::text, ' ') FROM (SELECT id FROM clinic.patients
    WHERE clinic_id = 'clinic-001' AND given_name IS NOT NULL ORDER BY id LIMIT 2) s")
[ -n "$pb" ] || fail "no two clinic-001 patients with a given_name"
swap="UPDATE clinic.patients p SET given_name = o.given_name FROM clinic.patients o
    WHERE (p.id, o.id) IN (('$pa', '$pb'), ('$pb', '$pa'))"
pgs_psql "$T_DB" -c "$swap" >/dev/null
rc=0
anon --target "$TGT" --clinic clinic-001 >/dev/null 2>"$T_DIR/swap.err" || rc=$?
pgs_psql "$T_DB" -c "$swap" >/dev/null
[ $rc -eq 1 ] || fail "a swapped ciphertext: exit $rc, expected 1"
grep -q "clinic.patients.given_name of clinic clinic-001 row .*authentication failed" "$T_DIR/swap.err" ||
    fail "no clear message for the swapped ciphertext: $(cat "$T_DIR/swap.err")"
[ "$(q "$COPY_DB" "SELECT md5(string_agg(id::text || family_name, ',' ORDER BY id)) FROM clinic.patients")" = "$before" ] ||
    fail "a failed copy changed the target"

# memory: a 150 000-row clinic in batches costs about what a small one does
pgs_psql "$T_DB" -c "INSERT INTO clinic.appointments (id, clinic_id, patient_id, practitioner, starts_at)
    SELECT gen_random_uuid(), 'clinic-big', gen_random_uuid(), repeat('p', 300) || g, now()
    FROM generate_series(1, 150000) g" >/dev/null
peak() { sed -n 's/.*peak memory \([0-9]*\) KiB.*/\1/p' "$1"; }
anon --target "$TGT" --clinic clinic-002 >"$T_DIR/small.out" 2>/dev/null || fail "anonymize clinic-002"
anon --target "$TGT" --clinic clinic-big >"$T_DIR/big.out" 2>"$T_DIR/big.err" ||
    fail "anonymize clinic-big: $(tail -n 3 "$T_DIR/big.err")"
small=$(peak "$T_DIR/small.out")
big=$(peak "$T_DIR/big.out")
[ -n "$small" ] && [ -n "$big" ] || fail "no peak memory in the summaries"
[ "$(q "$COPY_DB" "SELECT count(*) FROM clinic.appointments WHERE clinic_id = 'clinic-big'")" = 150000 ] ||
    fail "clinic-big's 150 000 rows did not all arrive"
note "peak memory: small clinic $small KiB, 150 000 rows (~50 MB) $big KiB"
[ "$big" -le $((small + 8192)) ] ||
    fail "copying 150 000 rows peaked at $big KiB against $small KiB for a small clinic: not streaming"

echo "ok: $total commands over 3 clinics, 2 copied masked: no identifying marker ($nid planted), no original id, birth dates to the year; rows, 5 joins, group sizes and kept columns equal the reference per clinic; EXPORT events chained (audit verify ok); re-run replaces; swapped ciphertext exit 1 untouched; self-target exit 2; no pseudonym key exit 3; 150 000 rows in $big KiB vs $small KiB"
