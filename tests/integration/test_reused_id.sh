#!/usr/bin/env bash
# Reused command ids on a real broker and database: a command applied, then
# re-sent as it was (a duplicate: counted, nothing changed), re-sent with
# other data and from another clinic under the same id (each dead-lettered
# IDEMPOTENCY_KEY_REUSED, the row unchanged, nothing written for the other
# clinic); and inside one multi-row statement of 12 commands, a command
# reusing that id and two commands sharing a new id with different keys
# (the first applied, the other dead-lettered): only the reusing commands
# are dead-lettered, the other ten are applied.
. "$(dirname "$0")/lib.sh"
# The worker runs as the ASan + UBSan build here: any memory error, UB or
# leak makes it exit non-zero, which pgs_worker_stop reports.
export PGSCRIBE_WORKER_BIN=${PGSCRIBE_ASAN_BIN:-$PGSCRIBE_BIN}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
T_PARTITIONS=1 # one partition: the second run finds every command waiting, in order
pgs_test_init reused_id
command -v kcat >/dev/null || fail "kcat is needed to send hand-made commands (scripts/deps.sh)"

ID=6a1e4c2b-0d3f-4b5a-8c7d-9e0f1a2b3c4d # the id that is reused
Q=6a1e4c2b-0d3f-4b5a-8c7d-00000000000f  # one id for two commands of the batch
P1=7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e01
MARKER=PHI-MARKER # in the data of every reusing command

# cmd ID CLINIC OP PATIENT GIVEN_NAME: one command on one line
cmd() {
    printf '{"command_id":"%s","clinic_id":"%s","actor":"user:42","entity":"patients",' "$1" "$2"
    printf '"op":"%s","key":{"id":"%s"},"data":{"given_name":"%s"},"issued_at":%s}' \
        "$3" "$4" "$5" "${6:-1700000000123}"
}
# send CLINIC PATIENT JSON
send() {
    printf '%s\n' "$3" | kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -k "$1/patients/$2" \
        -H content-type=application/json || fail "kcat could not produce for $2"
}

# 1. the command, applied
send clinic-7 $P1 "$(cmd $ID clinic-7 INSERT $P1 Ann)"
pgs_worker_start a
pgs_wait_applied 1 120
pgs_worker_stop "$W_PID"

# 2. the same command again, issued later by another gateway: a duplicate
send clinic-7 $P1 "$(cmd $ID clinic-7 INSERT $P1 Ann 1700000099999)"
# 3. the id with other data for the same row
send clinic-7 $P1 "$(cmd $ID clinic-7 UPSERT $P1 "$MARKER-changed")"
# 4. the id from another clinic, for its own row of the same key
send clinic-8 $P1 "$(cmd $ID clinic-8 INSERT $P1 "$MARKER-clinic-8")"
# 5. twelve INSERTs of one shape and clinic, waiting together, so one
#    multi-row statement (apply.multi_row_min 2 or more) holds them: ten new ids, the
#    reused id, and the new id Q a second time for another patient
for i in $(seq 10 19); do
    send clinic-9 "7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e$i" \
        "$(cmd "6a1e4c2b-0d3f-4b5a-8c7d-0000000000$i" clinic-9 INSERT \
            "7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e$i" "Pat $i")"
    if [ "$i" = 13 ]; then
        send clinic-9 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e30 \
            "$(cmd $ID clinic-9 INSERT 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e30 "$MARKER-in-batch")"
    fi
done
send clinic-9 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e40 \
    "$(cmd $Q clinic-9 INSERT 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e40 "Q a")"
send clinic-9 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e41 \
    "$(cmd $Q clinic-9 INSERT 7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e41 "Q b")"

pgs_worker_start b
pgs_wait_applied 12 120 # the first, the ten, and Q once
deadline=$((SECONDS + 120))
while :; do
    dead=$(pgs_dlq_count)
    [ "$dead" -ge 4 ] && break
    [ $SECONDS -lt $deadline ] || fail "only $dead of 4 dead letters within 120 s (a reused id taken for a duplicate?)"
    sleep 1
done
sleep 2 # anything late would show in the counts below
pgs_worker_stop "$W_PID"

rows=$(pgs_scalar "$T_DB" "SELECT string_agg(clinic_id || ':' || given_name, ',' ORDER BY clinic_id)
                           FROM clinic.patients WHERE id = '$P1'")
[ "$rows" = "clinic-7:Ann" ] || fail "patient $P1: $rows (expected clinic-7:Ann alone, unchanged)"
n9=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE clinic_id = 'clinic-9'
                         AND given_name LIKE 'Pat %'")
[ "$n9" = 10 ] || fail "$n9 of the 10 fresh clinic-9 commands applied"
marked=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE given_name LIKE '$MARKER%'")
[ "$marked" = 0 ] || fail "$marked reusing command(s) written"
# which of the two comes first depends on the batch's order; one alone is written
q=$(pgs_scalar "$T_DB" "SELECT string_agg(given_name, ',') FROM clinic.patients
                        WHERE id IN ('7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e40',
                                     '7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e41')")
case "$q" in "Q a" | "Q b") ;; *) fail "the two commands of id Q wrote: $q (expected one)" ;; esac
[ "$q" = "Q a" ] && q_dead=41 || q_dead=40
audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write' AND command_id = '$ID'")
[ "$audits" = 1 ] || fail "$audits audit rows for the reused id (expected the first command's)"
digests=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands
                              WHERE digest IS NULL OR length(digest) <> 32")
[ "$digests" = 0 ] || fail "$digests idempotency record(s) without a 32-byte digest"

grep -q "multi-row statement of [0-9]* command(s) failed (SQLSTATE PS002)" "$T_DIR/worker-b.log" ||
    fail "no multi-row statement met the reused id: the batch path is not covered"
dups=$(pgs_metrics_sum duplicates)
[ "$dups" = 1 ] || fail "duplicates $dups, expected 1 (the re-sent command)"

pgs_dlq_count >/dev/null
python3 - "$T_DIR/dlq.jsonl" "$MARKER" "$P1" "$q_dead" <<'PY' ||
import json, sys
path, marker, p1, q_dead = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
want = sorted(["clinic-7/patients/" + p1, "clinic-8/patients/" + p1,
               "clinic-9/patients/7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e30",
               "clinic-9/patients/7c2d5e3f-1a4b-4c6d-8e9f-0a1b2c3d4e" + q_dead])
problems = []
if sorted(r.get("key") for r in rows) != want:
    problems.append("dead letters %s, expected %s" % (sorted(r.get("key") for r in rows), want))
for r in rows:
    if r.get("code") != "IDEMPOTENCY_KEY_REUSED" or r.get("class") != "db-permanent":
        problems.append("%s: class %s code %s" % (r.get("key"), r.get("class"), r.get("code")))
    msg = r.get("message") or ""
    if marker in msg or "Ann" in msg or "clinic-7" in msg:
        problems.append("%s: message %r quotes a value or another clinic" % (r.get("key"), msg))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    fail "dead letters are not the four reusing commands as IDEMPOTENCY_KEY_REUSED (see above)"
grep -q "$MARKER" "$T_DIR"/worker-*.log && fail "the worker log quotes a value"

# READ COMMITTED: a re-delivery whose ON CONFLICT waited for a concurrent
# transaction recording the same id (and digest) is a duplicate once that one
# commits, though the statement's snapshot predates the record; with another
# digest it is a reused id; a record not visible at all is a retry (40001).
race() { # ID STORED_DIGEST SENT_DIGEST: the outcome of the worker's side
    pgs_psql "$T_DB" -c "BEGIN; INSERT INTO pgscribe.applied_commands
        (command_id, clinic_id, topic, kafka_partition, kafka_offset, digest)
        VALUES ('$1', 'clinic-1', 't', 0, 0, '$2'); SELECT pg_sleep(2); COMMIT" >/dev/null &
    local holder=$!
    sleep 0.7
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At \
        -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U pgscribe_worker -d "$T_DB" \
        -c "\\set VERBOSITY sqlstate" -c "WITH ins AS (INSERT INTO pgscribe.applied_commands
          (command_id, clinic_id, topic, kafka_partition, kafka_offset, digest)
          VALUES ('$1', 'clinic-1', 't', 0, 1, '$3') ON CONFLICT (command_id) DO NOTHING
          RETURNING command_id),
        seen AS (SELECT pgscribe.expect_same_command('$1', '$3', NULL) AS n
          WHERE NOT EXISTS (SELECT 1 FROM ins))
        SELECT (SELECT count(*) FROM ins) || '/' || (SELECT count(*) FROM seen)" 2>&1 || true
    wait "$holder"
}
out=$(race 3b0e0000-0000-4000-8000-000000000001 '\x0102' '\x0102')
[ "$out" = "0/1" ] || fail "concurrent re-delivery: $out (expected a duplicate, 0/1)"
out=$(race 3b0e0000-0000-4000-8000-000000000002 '\x0102' '\x0103')
case "$out" in *PS002*) ;; *) fail "concurrent reuse: $out (expected PS002)" ;; esac
out=$(PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -h "$PGS_PG_HOST" \
    -p "$PGS_PG_PORT" -U pgscribe_worker -d "$T_DB" -c "\\set VERBOSITY sqlstate" \
    -c "SELECT pgscribe.expect_same_command('3b0e0000-0000-4000-8000-000000000003', '\x01', NULL)" \
    2>&1 || true)
case "$out" in *40001*) ;; *) fail "a record not visible: $out (expected 40001, a retry)" ;; esac
# the comparison needs no read of the records: the worker role has none
out=$(psql -X -q -At -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" -U pgscribe_worker -d "$T_DB" \
    -c "SELECT digest FROM pgscribe.applied_commands LIMIT 1" 2>&1) &&
    fail "the worker role read applied_commands.digest: $out"
case "$out" in *"permission denied"*) ;; *) fail "reading digests: unexpected $out" ;; esac
echo "PASS: re-sent command counted as a duplicate; reused id (other data, other clinic," \
    "inside a multi-row statement, twice in one batch) dead-lettered IDEMPOTENCY_KEY_REUSED"
