#!/usr/bin/env bash
# Tenant walls on a real broker and database. Clinic A holds two patients;
# clinic B then sends UPDATE, DELETE and UPSERT of A's first id, INSERT of
# A's second, and UPDATE and DELETE of an id that exists nowhere. A's rows
# stay as they were; B's UPSERT and INSERT make B's own rows; B's UPDATE and
# DELETE of A's id are dead-lettered with exactly the class, code and
# message of the same operation on the missing id, and no pgscribe.* header
# names A's clinic, A's data, the row id or a constraint. A command whose
# Kafka key names clinic A while its body says B, one whose key map names
# clinic A, and an audit event keyed by clinic A with a body of clinic B are
# dead-lettered with class tenant; the WorkerMetrics records count them
# under clinic B.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=3
pgs_test_init tenant_walls
command -v kcat >/dev/null || fail "kcat is needed to send hand-made keys (scripts/deps.sh)"

A=clinic-a
B=clinic-b
P1=7a1e0c2d-3b4f-4d5e-8f60-7182939a4b01 # A's: B updates, deletes, upserts it
P2=7a1e0c2d-3b4f-4d5e-8f60-7182939a4b02 # A's: B inserts it
N=7a1e0c2d-3b4f-4d5e-8f60-7182939a4b0f  # nobody's
P3=7a1e0c2d-3b4f-4d5e-8f60-7182939a4b03 # B's body under A's message key
P4=7a1e0c2d-3b4f-4d5e-8f60-7182939a4b04 # B's body, A in its key map
SECRET=A-PHI-SECRET                     # in A's rows only

# cmd ID CLINIC OP ID DATA [KEYMAP]: one JSON command on one line
cmd() {
    printf '{"command_id":"%s","clinic_id":"%s","actor":"user:1","entity":"patients",' "$1" "$2"
    printf '"op":"%s","key":{%s},"data":%s,"issued_at":1700000000123}' \
        "$3" "${6:-\"id\":\"$4\"}" "$5"
}
# send TOPIC KAFKA_KEY JSON
send() {
    printf '%s\n' "$3" | kcat -P -b "$PGSCRIBE_KAFKA" -t "$1" -k "$2" -H content-type=application/json ||
        fail "kcat could not produce to $1"
}
cid() { printf '00000000-0000-4000-8000-%012d' "$1"; }

send "$T_RUN.commands" "$A/patients/$P1" \
    "$(cmd "$(cid 1)" $A INSERT $P1 "{\"given_name\":\"$SECRET-1\",\"mrn\":\"$SECRET-MRN-1\"}")"
send "$T_RUN.commands" "$A/patients/$P2" \
    "$(cmd "$(cid 2)" $A INSERT $P2 "{\"given_name\":\"$SECRET-2\",\"mrn\":\"$SECRET-MRN-2\"}")"

pgs_worker_start a
pgs_wait_applied 2 120
before=$(pgs_scalar "$T_DB" "SELECT string_agg(format('%s|%s|%s|%s|%s', clinic_id, id, given_name,
                                    mrn, version), ',' ORDER BY id) FROM clinic.patients")

# B's commands, one lane each id: in this order within the lane of P1
send "$T_RUN.commands" "$B/patients/$P1" "$(cmd "$(cid 11)" $B UPDATE $P1 '{"given_name":"B-upd"}')"
send "$T_RUN.commands" "$B/patients/$P1" "$(cmd "$(cid 12)" $B DELETE $P1 '{}')"
send "$T_RUN.commands" "$B/patients/$P1" "$(cmd "$(cid 13)" $B UPSERT $P1 '{"given_name":"B-ups"}')"
send "$T_RUN.commands" "$B/patients/$P2" "$(cmd "$(cid 14)" $B INSERT $P2 '{"given_name":"B-ins"}')"
send "$T_RUN.commands" "$B/patients/$N" "$(cmd "$(cid 15)" $B UPDATE $N '{"given_name":"B-upd"}')"
send "$T_RUN.commands" "$B/patients/$N" "$(cmd "$(cid 16)" $B DELETE $N '{}')"
# the message key says A, the body says B
send "$T_RUN.commands" "$A/patients/$P3" "$(cmd "$(cid 17)" $B INSERT $P3 '{"given_name":"B-key"}')"
# the key map says A, the body says B
send "$T_RUN.commands" "$B/patients/$P4" \
    "$(cmd "$(cid 18)" $B INSERT $P4 '{"given_name":"B-map"}' "\"clinic_id\":\"$A\",\"id\":\"$P4\"")"
# an audit event keyed by A with a body of B
send "$T_RUN.audit" "$A" "$(printf '{"event_id":"%s","clinic_id":"%s","actor":"user:1",%s}' \
    "$(cid 19)" $B '"action":"READ","resource_type":"patients","resource_id":"r-1","outcome":"SUCCESS","occurred_at":1700000000123,"source":"test","details":{}')"

pgs_wait_applied 4 120
deadline=$((SECONDS + 120))
while :; do
    dead=$(pgs_dlq_count)
    [ "$dead" -ge 6 ] && break
    [ $SECONDS -lt $deadline ] || fail "only $dead of 6 command dead letters within 120 s"
    sleep 1
done
adead=0
until [ "$adead" -ge 1 ]; do
    adead=$(pgs_topic_count "$T_RUN.audit.dlq")
    [ $SECONDS -lt $deadline ] || fail "the audit event keyed by another clinic was not dead-lettered"
    sleep 1
done
sleep 2 # anything late would show in the counts below
pgs_worker_stop "$W_PID"

after=$(pgs_scalar "$T_DB" "SELECT string_agg(format('%s|%s|%s|%s|%s', clinic_id, id, given_name,
                                   mrn, version), ',' ORDER BY id)
                            FROM clinic.patients WHERE clinic_id = '$A'")
[ "$after" = "$before" ] || fail "clinic A's rows changed: $before -> $after"
b_rows=$(pgs_scalar "$T_DB" "SELECT string_agg(id || '=' || given_name, ',' ORDER BY id)
                             FROM clinic.patients WHERE clinic_id = '$B'")
[ "$b_rows" = "$P1=B-ups,$P2=B-ins" ] ||
    fail "clinic B's rows are '$b_rows' (expected its own $P1 from the UPSERT and $P2 from the INSERT)"
others=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE clinic_id NOT IN ('$A', '$B')
                             OR id IN ('$P3', '$P4', '$N')")
[ "$others" = 0 ] || fail "$others row(s) written that no clinic may have"
applied=$(pgs_scalar "$T_DB" "SELECT string_agg(right(command_id::text, 2), ',' ORDER BY command_id)
                              FROM pgscribe.applied_commands")
[ "$applied" = "01,02,13,14" ] || fail "applied commands $applied (expected 01,02,13,14)"

# Every dead letter with all its headers, read raw (kcat's JSON envelope).
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.commands.dlq" -e -q -J >"$T_DIR/dlq.raw" ||
    fail "kcat could not read the dead letters"
kcat -b "$PGSCRIBE_KAFKA" -C -t "$T_RUN.audit.dlq" -e -q -J >"$T_DIR/audit_dlq.raw" ||
    fail "kcat could not read the audit dead letters"
pgs_metrics_sum tenant_violations >/dev/null
python3 - "$T_DIR" "$A" "$B" "$P1" "$P2" "$N" "$P3" "$P4" "$SECRET" <<'PY' ||
import json, sys
d, A, B, P1, P2, N, P3, P4, secret = sys.argv[1:]
problems = []

def headers(line):
    m = json.loads(line)
    h = m.get("headers") or {}
    if isinstance(h, list):  # kcat writes [name, value, name, value, ...]
        h = dict(zip(h[0::2], h[1::2]))
    return m.get("key"), h

letters = dict(headers(l) for l in open(d + "/dlq.raw") if l.strip())
want_keys = {"%s/patients/%s" % (B, P1), "%s/patients/%s" % (B, N),
             "%s/patients/%s" % (A, P3), "%s/patients/%s" % (B, P4)}
if set(letters) != want_keys:
    problems.append("dead-letter keys %s, expected %s" % (sorted(letters), sorted(want_keys)))
# two per key for P1 and N (UPDATE then DELETE): read them in order
rows = [headers(l) for l in open(d + "/dlq.raw") if l.strip()]
by = {}
for k, h in rows:
    by.setdefault(k, []).append(h)
if len(rows) != 6:
    problems.append("%d dead letters, expected 6" % len(rows))

def triple(h):
    return (h.get("pgscribe.error.class"), h.get("pgscribe.error.code"),
            h.get("pgscribe.error.message"))

cross = by.get("%s/patients/%s" % (B, P1), [])
none = by.get("%s/patients/%s" % (B, N), [])
if len(cross) != 2 or len(none) != 2:
    problems.append("expected UPDATE and DELETE dead letters for A's id and the missing id")
else:
    for op, x, y in (("UPDATE", cross[0], none[0]), ("DELETE", cross[1], none[1])):
        if triple(x) != triple(y):
            problems.append("%s of A's id answered %r, of a missing id %r" % (op, triple(x), triple(y)))
        if triple(x)[:2] != ("db-permanent", "PS001"):
            problems.append("%s of A's id: %r, expected db-permanent PS001" % (op, triple(x)))
        if op not in (triple(x)[2] or ""):
            problems.append("%s message %r does not name the operation" % (op, triple(x)[2]))
for k, want in (("%s/patients/%s" % (A, P3), "TENANT_KEY_MISMATCH"),
                ("%s/patients/%s" % (B, P4), "TENANT_MISMATCH")):
    for h in by.get(k, []):
        if triple(h)[:2] != ("tenant", want):
            problems.append("%s: %r, expected tenant %s" % (k, triple(h), want))

audit = [headers(l) for l in open(d + "/audit_dlq.raw") if l.strip()]
if len(audit) != 1 or triple(audit[0][1])[:2] != ("tenant", "TENANT_KEY_MISMATCH"):
    problems.append("audit dead letters %r, expected one tenant TENANT_KEY_MISMATCH" % audit)

# no pgscribe.* header names another clinic, A's data, a row id or a constraint
for k, h in rows + audit:
    for name, value in h.items():
        if not name.startswith("pgscribe."):
            continue
        for bad in (A, secret, P1, P2, P3, P4, N, "pkey", "constraint"):
            if bad in value:
                problems.append("%s: header %s=%r names %r" % (k, name, value, bad))

# tenant violations under clinic B: the key mismatch, the key-map mismatch,
# the audit event; none under A; the totals agree
per, total = {}, 0
for line in open(d + "/metrics.jsonl"):
    m = json.loads(line)
    total += m.get("tenant_violations", 0)
    for c in m.get("clinics", []):
        per[c["clinic_id"]] = per.get(c["clinic_id"], 0) + c.get("tenant_violations", 0)
if per.get(B) != 3 or per.get(A, 0) != 0 or total != 3:
    problems.append("tenant violations per clinic %r, total %d (expected 3 under %s)" % (per, total, B))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    fail "the walls leak or the answers differ (see above)"
grep -q "$SECRET" "$T_DIR"/worker-a.log && fail "the worker log quotes clinic A's data"
echo "PASS: clinic A's rows untouched and indistinguishable from missing ones;" \
    "message-key, key-map and audit-key mismatches dead-lettered as tenant and counted under clinic B"
