#!/usr/bin/env bash
# Field encryption of PHI columns end to end: a keyring (a "*" key and a key
# of clinic-002's own), `pgscribe keys protect`, then 10 000 generated
# commands whose PHI strings are all unique planted markers. After a
# CHECKPOINT no marker is in the cluster's base/ and global/ relation files,
# pg_wal, the worker log, the metrics topic or the traces topic; every value
# is on the right key (`keys status`: clinic-002's on its own key, the others
# on "*"); every table read back decrypted through `pgscribe show --all`
# equals the sequential clear reference; `audit verify` passes after the
# READ events. A ciphertext swapped between two rows, or copied into another
# clinic's row (as postgres), makes `show` fail with "authentication
# failed". A worker without a keyring dead-letters a PHI write
# VALIDATE_NO_FIELD_KEY and stores nothing.
. "$(dirname "$0")/lib.sh"
KEYS=$(mktemp -d /tmp/pgscribe-phi-keys.XXXXXX)
KR=$KEYS/keyring
T_EXTRA_CONF=$'[crypto]\nkeyring = '"$KR"$'\n[trace]\nsampling = always\nflush_ms = 200'
pgs_test_init phi_encryption
command -v kcat >/dev/null || fail "kcat is needed (scripts/deps.sh)"
ADMIN="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=postgres"
REFC="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_REF_DB user=postgres"
PGDATA_DIR=$PGS_STACK_DIR/pg/data
[ -d "$PGDATA_DIR/base" ] || fail "no cluster data folder at $PGDATA_DIR"

"$PGSCRIBE_BIN" keys rotate --keyring "$KR" >/dev/null 2>&1 || fail "keys rotate (*)"
"$PGSCRIBE_BIN" keys rotate --keyring "$KR" --clinic clinic-002 >/dev/null 2>&1 ||
    fail "keys rotate (clinic-002)"
[ "$(stat -c %a "$KR")" = 600 ] || fail "the keyring is not 0600"
"$PGSCRIBE_BIN" keys protect --keyring "$KR" --conninfo "$ADMIN" >"$T_DIR/protect.out" 2>&1 ||
    fail "keys protect: $(cat "$T_DIR/protect.out")"
# idempotent
"$PGSCRIBE_BIN" keys protect --keyring "$KR" --conninfo "$ADMIN" >"$T_DIR/protect2.out" 2>&1 ||
    fail "keys protect (again): $(cat "$T_DIR/protect2.out")"
[ "$(grep -c 'nothing to protect' "$T_DIR/protect2.out")" -eq 4 ] ||
    fail "a second keys protect did not find everything protected: $(cat "$T_DIR/protect2.out")"
[ "$(pgs_scalar "$T_DB" "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
    WHERE attrelid = 'clinic.patients'::regclass AND attname = 'given_name'")" = bytea ] ||
    fail "keys protect left clinic.patients.given_name in clear"

# the commands: generated, every PHI string replaced by a unique marker
MARK="PHX$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
total=10000
"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.scratch" --count $total --clinics 5 --seed 83 \
    --emit "$T_DIR/gen.jsonl" --no-progress >/dev/null 2>&1 || fail "generating commands"
planted=$(python3 "$REPO/tests/integration/phi_plant.py" "$MARK" "$T_DIR/gen.jsonl" "$T_DIR/commands.jsonl")
note "planted $planted unique markers ($MARK...)"
[ "$planted" -gt 10000 ] || fail "only $planted markers planted"

pgs_worker_start a
t0=$(date +%s.%N)
# the last 200 carry a sampled traceparent (spans for the traces topic),
# sent once the others are applied so each key's order holds
head -n $((total - 200)) "$T_DIR/commands.jsonl" >"$T_DIR/head.jsonl"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/head.jsonl" --no-progress >/dev/null 2>&1 ||
    fail "producing the commands"
pgs_wait_applied $((total - 200)) 300
tail -n 200 "$T_DIR/commands.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    c = json.loads(line)
    print("%s/%s/%s\t%s" % (c["clinic_id"], c["entity"], "/".join(str(v) for v in c["key"].values()), line.strip()))' |
    kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -K $'\t' -H content-type=application/json \
        -H traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ||
    fail "kcat could not produce the traced commands"
pgs_wait_applied $total 300
t1=$(date +%s.%N)
note "$total commands applied in $(python3 -c "print('%.1f' % ($t1 - $t0))") s"
[ "$(pgs_dlq_count)" -eq 0 ] || fail "$(pgs_dlq_count) dead letters"
sleep 2 # a metrics interval and a trace flush after the last command
pgs_worker_stop "$W_PID"

# no marker anywhere the cluster or pgscribe wrote
pgs_psql "$T_DB" -c "CHECKPOINT" >/dev/null
pgs_psql "$T_DB" -c "SELECT pg_switch_wal()" >/dev/null
for where in base global pg_wal; do
    hits=$( (grep -rlaF "$MARK" "$PGDATA_DIR/$where" 2>/dev/null || true) | wc -l)
    [ "$hits" -eq 0 ] || fail "$hits file(s) under $where hold a planted marker in clear"
done
! grep -qaF "$MARK" "$T_DIR/worker-a.log" || fail "the worker log holds a planted marker"
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.metrics" -e -q >"$T_DIR/metrics.bin" 2>/dev/null
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.traces" -e -q >"$T_DIR/traces.bin" 2>/dev/null
[ -s "$T_DIR/metrics.bin" ] || fail "the metrics topic is empty: the check proves nothing"
[ -s "$T_DIR/traces.bin" ] || fail "the traces topic is empty: the check proves nothing"
! grep -qaF "$MARK" "$T_DIR/metrics.bin" || fail "the metrics topic holds a planted marker"
! grep -qaF "$MARK" "$T_DIR/traces.bin" || fail "the traces topic holds a planted marker"
# (the commands topic holds them, as the producer sent them: it is the input)
[ "$(kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.commands" -e -q 2>/dev/null | grep -caF "$MARK")" -gt 0 ] ||
    fail "the commands topic holds no marker: the planting failed"

# every value on its clinic's key: clinic-002 on key 2, the others on key 1
"$PGSCRIBE_BIN" keys status --conninfo "$ADMIN" >"$T_DIR/status.out" || fail "keys status"
grep -qP '\tclear\t[1-9]' "$T_DIR/status.out" && fail "values in clear: $(grep clear "$T_DIR/status.out")"
c2=$("$PGSCRIBE_BIN" keys status --conninfo "$ADMIN" --clinic clinic-002 | awk -F'\t' '$2 ~ /^key=/ && $2 != "key=2" {n += $3} END {print n + 0}')
c1=$("$PGSCRIBE_BIN" keys status --conninfo "$ADMIN" --clinic clinic-001 | awk -F'\t' '$2 ~ /^key=/ && $2 != "key=1" {n += $3} END {print n + 0}')
[ "$c2" -eq 0 ] || fail "$c2 values of clinic-002 are not on its own key 2"
[ "$c1" -eq 0 ] || fail "$c1 values of clinic-001 are not on the \"*\" key 1"
on2=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE clinic_id = 'clinic-002'
    AND pgscribe.envelope_key_id(given_name) = 2")
[ "$on2" -gt 0 ] || fail "no clinic-002 patient on key 2: the clinic key check proves nothing"

# decrypted, every table equals the sequential reference
pgs_reference "$T_DIR/commands.jsonl"
# the scan above can fail: the clear reference database, now loaded, is found
pgs_psql "$T_REF_DB" -c "CHECKPOINT" >/dev/null
[ "$( (grep -rlaF "$MARK" "$PGDATA_DIR/base" || true) | wc -l)" -gt 0 ] ||
    fail "the marker scan does not find the clear reference's markers: it proves nothing"
ts=$(date +%s%N)
python3 "$REPO/tests/integration/phi_compare.py" "$PGSCRIBE_BIN" "$KR" "$ADMIN" "$REFC" \
    >"$T_DIR/compare.out" 2>&1 || fail "decrypted tables differ from the reference: $(cat "$T_DIR/compare.out")"
note "$(tr '\n' ';' <"$T_DIR/compare.out") in $((($(date +%s%N) - ts) / 1000000)) ms"

# show: the plaintext, and a READ event with the operator and no value
read -r pid given < <(pgs_scalar "$REFC" "SELECT id, given_name FROM clinic.patients
    WHERE clinic_id = 'clinic-003' AND given_name IS NOT NULL ORDER BY id LIMIT 1" | tr '|' ' ')
[ -n "$given" ] || fail "no clinic-003 patient with a given_name in the reference"
"$PGSCRIBE_BIN" show --keyring "$KR" --conninfo "$ADMIN" --clinic clinic-003 \
    --entity clinic.patients --key "$pid" --operator alice >"$T_DIR/show.json" ||
    fail "show of patient $pid failed"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["given_name"])' "$T_DIR/show.json")" = "$given" ] ||
    fail "show does not give the plaintext given_name back"
ev=$(pgs_scalar "$T_DB" "SELECT actor || '|' || row_key || '|' || array_length(columns, 1)
    FROM audit.events WHERE action = 'READ' AND clinic_id = 'clinic-003' AND row_key = '$pid'")
[ "$ev" = "postgres (alice)|$pid|11" ] || fail "READ event wrong: '$ev'"
reads=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE action = 'READ'")
leak=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE audit.canonical(events)::text LIKE '%' || encode(convert_to('$given', 'UTF8'), 'hex') || '%'")
[ "$leak" -eq 0 ] || fail "an audit row holds the value shown"
"$PGSCRIBE_BIN" audit verify --conninfo "$ADMIN" >"$T_DIR/verify.out" 2>&1 ||
    fail "audit verify after $reads READ events: $(cat "$T_DIR/verify.out")"

# tampering, as postgres (no RLS): a swap between two rows of one clinic ...
read -r a b < <(pgs_scalar "$T_DB" "SELECT string_agg(id::text, ' ') FROM (SELECT id FROM clinic.patients
    WHERE clinic_id = 'clinic-003' AND given_name IS NOT NULL ORDER BY id LIMIT 2) s")
pgs_psql "$T_DB" -c "UPDATE clinic.patients p SET given_name = q.given_name
    FROM clinic.patients q WHERE p.clinic_id = 'clinic-003' AND q.clinic_id = 'clinic-003'
    AND ((p.id = '$a' AND q.id = '$b') OR (p.id = '$b' AND q.id = '$a'))" >/dev/null
for k in "$a" "$b"; do
    if "$PGSCRIBE_BIN" show --keyring "$KR" --conninfo "$ADMIN" --clinic clinic-003 \
        --entity clinic.patients --key "$k" >/dev/null 2>"$T_DIR/tamper.err"; then
        fail "show of $k succeeded with a ciphertext swapped in from another row"
    fi
    grep -q "given_name: authentication failed" "$T_DIR/tamper.err" ||
        fail "show did not say authentication failed: $(cat "$T_DIR/tamper.err")"
done
# ... and one moved into another clinic's row
read -r c < <(pgs_scalar "$T_DB" "SELECT id FROM clinic.patients WHERE clinic_id = 'clinic-001'
    AND notes IS NOT NULL ORDER BY id LIMIT 1")
read -r d < <(pgs_scalar "$T_DB" "SELECT id FROM clinic.patients WHERE clinic_id = 'clinic-004'
    AND notes IS NOT NULL ORDER BY id LIMIT 1")
pgs_psql "$T_DB" -c "UPDATE clinic.patients SET notes = (SELECT notes FROM clinic.patients
    WHERE clinic_id = 'clinic-001' AND id = '$c') WHERE clinic_id = 'clinic-004' AND id = '$d'" >/dev/null
"$PGSCRIBE_BIN" show --keyring "$KR" --conninfo "$ADMIN" --clinic clinic-001 \
    --entity clinic.patients --key "$c" >/dev/null || fail "show of the source row failed"
if "$PGSCRIBE_BIN" show --keyring "$KR" --conninfo "$ADMIN" --clinic clinic-004 \
    --entity clinic.patients --key "$d" >/dev/null 2>"$T_DIR/tamper.err"; then
    fail "show succeeded with a ciphertext of clinic-001 in a clinic-004 row"
fi
grep -q "notes: authentication failed" "$T_DIR/tamper.err" ||
    fail "show did not say authentication failed: $(cat "$T_DIR/tamper.err")"

# no keyring: a PHI write is a dead letter, nothing stored
grep -v "^keyring = " "$T_CONF" >"$T_DIR/nokeys.conf"
NEW=9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f
printf '{"command_id":"%s","clinic_id":"clinic-001","actor":"user:1","entity":"patients","op":"INSERT","key":{"id":"%s"},"data":{"given_name":"%sNOKEY"},"issued_at":1700000000000}\n' \
    "$(cat /proc/sys/kernel/random/uuid)" "$NEW" "$MARK" |
    kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -k "clinic-001/patients/$NEW" \
        -H content-type=application/json || fail "kcat could not produce"
"$PGSCRIBE_BIN" run -c "$T_DIR/nokeys.conf" >"$T_DIR/worker-b.log" 2>&1 &
W_PID=$!
T_PIDS+=("$W_PID")
deadline=$((SECONDS + 60))
until [ "$(pgs_dlq_count)" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "no dead letter for a PHI write without a keyring"
    sleep 0.3
done
pgs_worker_stop "$W_PID"
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.commands.dlq" -e -q -f '%h\n' | grep -q VALIDATE_NO_FIELD_KEY ||
    fail "the dead letter does not say VALIDATE_NO_FIELD_KEY"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE id = '$NEW'")" -eq 0 ] ||
    fail "a row was stored without a keyring"
! grep -qaF "$MARK" "$T_DIR/worker-b.log" || fail "the keyless worker logged the value"
rm -rf "$KEYS"
echo "ok: $total commands, $planted planted PHI markers: none in base/, global/, pg_wal, the worker log, metrics or traces; clinic-002 on its own key; decrypted tables equal the reference; show round trip + READ audit ($reads READ events, audit verify ok); swapped / cross-clinic ciphertexts fail authentication; no keyring -> VALIDATE_NO_FIELD_KEY"
