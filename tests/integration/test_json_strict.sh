#!/usr/bin/env bash
# Strict JSON on a real broker and database: a command naming a field twice
# ("op":"INSERT",...,"op":"DELETE", or a second clinic_id) is dead-lettered
# with DECODE_DUPLICATE_FIELD and writes nothing, whichever copy a last-wins
# parser would keep; a command sent with "Content-Type: Application/JSON;
# charset=utf-8" (a Java or HTTP-bridge producer's spelling) is applied.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=3
pgs_test_init json_strict
command -v kcat >/dev/null || fail "kcat is needed to send hand-made headers (scripts/deps.sh)"

P1=5b0c7f52-1f1e-4c7a-9a51-6b1d2c3e4f51 # inserted, then the duplicated op
P2=5b0c7f52-1f1e-4c7a-9a51-6b1d2c3e4f52 # the duplicated clinic_id
P3=5b0c7f52-1f1e-4c7a-9a51-6b1d2c3e4f53 # the HTTP-style header
P4=5b0c7f52-1f1e-4c7a-9a51-6b1d2c3e4f54 # a name repeated in key
MARKER=PHI-MARKER # in every value of the refused commands

# cmd ID OP KEY TAIL [DATA]: one command on one line; KEY is the key map's
# inside, TAIL is appended inside the top-level object after every regular
# field, DATA replaces the data map.
cmd() {
    printf '{"command_id":"%s","clinic_id":"clinic-7","actor":"user:42","entity":"patients",' "$1"
    printf '"op":"%s","key":{%s},"data":%s,"issued_at":1700000000123%s}' \
        "$2" "$3" "${5:-{\"given_name\":\"$MARKER-$1\"\}}" "$4"
}
# send KAFKA_KEY HEADER_NAME HEADER_VALUE JSON
send() {
    printf '%s\n' "$4" | kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -k "$1" -H "$2=$3" ||
        fail "kcat could not produce $1"
}

send "clinic-7/patients/$P1" content-type application/json \
    "$(cmd 00000000-0000-4000-8000-000000000001 INSERT "\"id\":\"$P1\"" "")"
# Same Kafka key, so it lands after the insert: last-wins would delete P1
# (no data, so that a DELETE is valid).
send "clinic-7/patients/$P1" content-type application/json \
    "$(cmd 00000000-0000-4000-8000-000000000002 INSERT "\"id\":\"$P1\"" ',"op":"DELETE"' '{}')"
# last-wins would write P2 under clinic-8, a clinic a first-wins gateway never checked
send "clinic-7/patients/$P2" content-type application/json \
    "$(cmd 00000000-0000-4000-8000-000000000003 INSERT "\"id\":\"$P2\"" ',"clinic_id":"clinic-8"')"
send "clinic-7/patients/$P3" Content-Type "Application/JSON; charset=utf-8" \
    "$(cmd 00000000-0000-4000-8000-000000000004 INSERT "\"id\":\"$P3\"" "")"
# a name repeated in key: last-wins would write over P1 instead of P4
send "clinic-7/patients/$P4" CONTENT-TYPE application/json \
    "$(cmd 00000000-0000-4000-8000-000000000005 INSERT "\"id\":\"$P4\",\"id\":\"$P1\"" "")"

pgs_worker_start a
pgs_wait_applied 2 120
deadline=$((SECONDS + 120))
while :; do
    dead=$(pgs_dlq_count)
    [ "$dead" -ge 3 ] && break
    [ $SECONDS -lt $deadline ] || fail "only $dead of 3 dead letters within 120 s"
    sleep 1
done
sleep 2 # anything late would show in the counts below
pgs_worker_stop "$W_PID"

applied=$(pgs_scalar "$T_DB" "SELECT string_agg(command_id::text, ',' ORDER BY command_id)
                              FROM pgscribe.applied_commands")
[ "$applied" = "00000000-0000-4000-8000-000000000001,00000000-0000-4000-8000-000000000004" ] ||
    fail "applied commands: $applied (expected the plain insert and the Content-Type one)"
rows=$(pgs_scalar "$T_DB" "SELECT string_agg(id || '@' || clinic_id, ',' ORDER BY id)
                           FROM clinic.patients")
[ "$rows" = "$P1@clinic-7,$P3@clinic-7" ] ||
    fail "clinic.patients holds $rows (expected $P1 and $P3 under clinic-7 only)"

pgs_dlq_count >/dev/null
python3 - "$T_DIR/dlq.jsonl" "$MARKER" "$P1" "$P2" "$P4" <<'PY' ||
import json, sys
path, marker, p1, p2, p4 = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
want = {"clinic-7/patients/" + p1: "'op'", "clinic-7/patients/" + p2: "'clinic_id'",
        "clinic-7/patients/" + p4: "a name in 'key' appears more than once (2 bytes, digest "}
problems = []
if sorted(r.get("key") for r in rows) != sorted(want):
    problems.append("dead letters %s, expected %s" % ([r.get("key") for r in rows], sorted(want)))
for r in rows:
    msg = r.get("message") or ""
    if r.get("class") != "decode" or r.get("code") != "DECODE_DUPLICATE_FIELD":
        problems.append("%s: class %s code %s" % (r.get("key"), r.get("class"), r.get("code")))
    if r.get("attempts") != 0:
        problems.append("%s: attempts %s, expected 0" % (r.get("key"), r.get("attempts")))
    if want.get(r.get("key"), "?") not in msg:
        problems.append("%s: message %r does not name %s" % (r.get("key"), msg, want.get(r.get("key"))))
    for value in (marker, "DELETE", "clinic-8", p1 if r.get("key", "").endswith(p4) else marker):
        if value in msg:
            problems.append("%s: message %r quotes a value" % (r.get("key"), msg))
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    fail "dead letters are not the three duplicated-field commands (see above)"
grep -q "$MARKER" "$T_DIR"/worker-a.log && fail "the worker log quotes a value"
echo "PASS: duplicated fields dead-lettered as DECODE_DUPLICATE_FIELD, nothing written;" \
    "Content-Type: Application/JSON applied"
