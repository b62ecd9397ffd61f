#!/usr/bin/env bash
# Multi-row statements per table on a real broker and database, the columns a
# command leaves out: 20 appointments inserted with status 'arrived', then, all
# waiting together in one partition so that they share transactions, 10
# INSERTs that omit status (a DEFAULTed column: must be 'booked', not NULL)
# and omit reason (no DEFAULT: NULL), 1 INSERT giving status, 10 UPSERTs of
# existing rows giving only reason (status and practitioner must stay), 4
# versioned UPDATEs with the right version and 4 plain ones in the same
# statement, and 1 versioned UPSERT with a wrong version: that one alone is
# dead-lettered (PS001, DB_ROW_PRECONDITION), every other command is applied.
. "$(dirname "$0")/lib.sh"
export PGSCRIBE_WORKER_BIN=${PGSCRIBE_ASAN_BIN:-$PGSCRIBE_BIN}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
T_PARTITIONS=1 # one partition: the second run finds every command waiting
pgs_test_init multirow_defaults
command -v kcat >/dev/null || fail "kcat is needed to send hand-made commands (scripts/deps.sh)"

PATIENT=7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e01
n=0
# appt CMD-ID-SUFFIX OP ROW-SUFFIX DATA-JSON [EXPECTED_VERSION]
appt() {
    local ev=""
    [ -n "${5:-}" ] && ev=",\"expected_version\":$5"
    printf '{"command_id":"6a1e4c2b-0d3f-4b5a-8c7d-%012d","clinic_id":"clinic-3","actor":"user:7",' "$1"
    printf '"entity":"appointments","op":"%s","key":{"id":"5b1e4c2b-0d3f-4b5a-8c7d-%012d"},' "$2" "$3"
    printf '"data":%s%s,"issued_at":1700000000123}\n' "$4" "$ev"
}
send() { # ROW-SUFFIX JSON (the caller's appt used id n + 1: count it here)
    n=$((n + 1))
    printf '%s\n' "$2" | kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" \
        -k "clinic-3/appointments/$1" -H content-type=application/json ||
        fail "kcat could not produce"
}
row() { # ROW-SUFFIX COLUMN
    pgs_scalar "$T_DB" "SELECT coalesce($2::text, '<null>') FROM clinic.appointments
        WHERE id = '5b1e4c2b-0d3f-4b5a-8c7d-$(printf %012d "$1")'"
}

# 1. rows 1..20, status 'arrived', practitioner 'dr-a', reason 'r0'
for r in $(seq 1 20); do
    send $r "$(appt $((n + 1)) INSERT $r "{\"patient_id\":\"$PATIENT\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"status\":\"arrived\",\"practitioner\":\"dr-a\",\"reason\":\"r0\"}")"
done
pgs_worker_start a
pgs_wait_applied 20 120
pgs_worker_stop "$W_PID"

# 2. everything else waits on the topic before the worker starts again
for r in $(seq 101 110); do # INSERTs without status or reason
    send $r "$(appt $((n + 1)) INSERT $r "{\"patient_id\":\"$PATIENT\",\"starts_at\":\"2026-12-02T09:00:00Z\",\"practitioner\":\"dr-b\"}")"
done
send 111 "$(appt $((n + 1)) INSERT 111 "{\"patient_id\":\"$PATIENT\",\"starts_at\":\"2026-12-02T10:00:00Z\",\"status\":\"noshow\"}")"
for r in $(seq 1 10); do # UPSERTs of existing rows, reason only
    send $r "$(appt $((n + 1)) UPSERT $r "{\"patient_id\":\"$PATIENT\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"reason\":\"r1\"}")"
done
for r in $(seq 11 14); do # versioned UPDATEs, right version (1)
    send $r "$(appt $((n + 1)) UPDATE $r '{"reason":"r2"}' 1)"
done
for r in $(seq 15 18); do # plain UPDATEs
    send $r "$(appt $((n + 1)) UPDATE $r '{"practitioner":"dr-c"}')"
done
send 19 "$(appt $((n + 1)) UPSERT 19 "{\"patient_id\":\"$PATIENT\",\"starts_at\":\"2026-12-01T09:00:00Z\",\"reason\":\"wrong\"}" 7)"
total=$n # 20 + 10 + 1 + 10 + 4 + 4 + 1

pgs_worker_start b
pgs_wait_applied $((total - 1)) 120
deadline=$((SECONDS + 120))
until [ "$(pgs_dlq_count)" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the wrong-version UPSERT was not dead-lettered"
    sleep 1
done
pgs_worker_stop "$W_PID"

applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied" -eq $((total - 1)) ] || fail "applied $applied, expected $((total - 1))"
[ "$(pgs_dlq_count)" -eq 1 ] || fail "dead letters: $(pgs_dlq_count), expected 1"
python3 - "$T_DIR/dlq.jsonl" <<'PY' || fail "the dead letter is not the wrong-version UPSERT (PS001, db-permanent)"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print("dead letter:", {k: v for k, v in r.items() if k in ("code", "class", "key", "reason")}, file=sys.stderr)
sys.exit(0 if r.get("code") == "PS001" and r.get("class") == "db-permanent" and r.get("key") == "clinic-3/appointments/19" else 1)
PY
for r in $(seq 101 110); do
    [ "$(row $r status)" = booked ] || fail "row $r: status $(row $r status), expected its DEFAULT 'booked'"
    [ "$(row $r reason)" = '<null>' ] || fail "row $r: reason $(row $r reason), expected NULL"
done
[ "$(row 111 status)" = noshow ] || fail "row 111: status $(row 111 status)"
for r in $(seq 1 10); do
    [ "$(row $r reason)" = r1 ] || fail "row $r: reason $(row $r reason), expected r1"
    [ "$(row $r status)" = arrived ] || fail "row $r: the UPSERT overwrote status ($(row $r status))"
    [ "$(row $r practitioner)" = dr-a ] || fail "row $r: the UPSERT overwrote practitioner"
    [ "$(row $r version)" = 2 ] || fail "row $r: version $(row $r version), expected 2"
done
for r in $(seq 11 14); do
    [ "$(row $r reason)" = r2 ] || fail "row $r: versioned UPDATE not applied"
done
for r in $(seq 15 18); do
    [ "$(row $r practitioner)" = dr-c ] || fail "row $r: plain UPDATE not applied"
    [ "$(row $r reason)" = r0 ] || fail "row $r: the UPDATE overwrote reason"
done
[ "$(row 19 reason)" = r0 ] || fail "row 19: the wrong-version UPSERT changed the row"
[ "$(row 19 version)" = 1 ] || fail "row 19: version $(row 19 version)"
echo "ok: $applied applied, 1 dead-lettered; DEFAULTs kept, UPSERTs set only their columns"
