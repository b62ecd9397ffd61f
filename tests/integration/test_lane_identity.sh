#!/usr/bin/env bash
# Lane identity on a real broker and database.
# 1. One row, many spellings: a patient inserted, then 60 UPDATEs, each with
#    expected_version = the version before it, naming the row's uuid in lower
#    case, upper case, in braces and without hyphens in turn. PostgreSQL
#    takes them as one row, so they must run as one lane, in order: all 61
#    applied, 0 dead letters, version 61 at the end.
# 2. The pairs whose separator-joined lane keys once collided — clinic "A"
#    with a key holding the separator, and clinic "A<US>patients<US>x"; two
#    clinic ids equal in their first 150 bytes — never share a lane or a
#    transaction: the clinic ids with a control character or over 128 bytes
#    are dead-lettered VALIDATE_BAD_CLINIC_ID, and two 128-byte clinic ids
#    differing only in their last byte each get their own row. Nothing is
#    written under another clinic.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=3
pgs_test_init lane_identity
command -v kcat >/dev/null || fail "kcat is needed (scripts/deps.sh)"

P=7e4c1a2b-3d5e-4f60-8a1b-2c3d4e5f6a7b
PU=$(echo "$P" | tr a-f A-F)
PB="{$P}"
PN=$(echo "$P" | tr -d -)
N=60
US=$'\x1f'

# cmd ID CLINIC OP ID DATA [EXTRA]: one JSON command
cmd() {
    printf '{"command_id":"%s","clinic_id":"%s","actor":"user:1","entity":"patients","op":"%s",' \
        "$1" "$2" "$3"
    printf '"key":{"id":"%s"},"data":%s,"issued_at":1700000000000%s}\n' "$4" "$5" "${6:-}"
}
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1])[1:-1])' "$1"; }
uid() { printf '00000000-0000-4000-8000-%012d' "$1"; }

{
    cmd "$(uid 1)" clinic-1 INSERT "$P" \
        '{"family_name":"Row","given_name":"v0","birth_date":"1980-01-01"}'
    for ((k = 1; k <= N; k++)); do
        case $((k % 4)) in
        0) id=$P ;; 1) id=$PU ;; 2) id=$PB ;; 3) id=$PN ;;
        esac
        cmd "$(uid $((k + 1)))" clinic-1 UPDATE "$id" "{\"given_name\":\"v$k\"}" \
            ",\"expected_version\":$k"
    done
} >"$T_DIR/spellings.jsonl"
# One Kafka key for all of them: one partition, so Kafka's order is theirs.
kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -K '|' -H content-type=application/json \
    < <(sed "s|^|clinic-1/patients/$P\||" "$T_DIR/spellings.jsonl") || fail "kcat failed"

# The collision pairs.
A_KEY_ID=5b0c7f52-1f1e-4c7a-9a51-6b1d2c3e4f01
SEP_CLINIC="A${US}patients${US}x"
LONG1=$(printf 'L%.0s' {1..150})-one
LONG2=$(printf 'L%.0s' {1..150})-two
EDGE1=$(printf 'E%.0s' {1..127})1 # exactly 128 bytes
EDGE2=$(printf 'E%.0s' {1..127})2
{
    cmd "$(uid 101)" A INSERT "$A_KEY_ID" '{"family_name":"A-row","given_name":"a"}'
    cmd "$(uid 102)" "$(json_str "$SEP_CLINIC")" INSERT "$A_KEY_ID" \
        '{"family_name":"SEP-row","given_name":"s"}'
    cmd "$(uid 103)" "$LONG1" INSERT "$A_KEY_ID" '{"family_name":"L1","given_name":"l"}'
    cmd "$(uid 104)" "$LONG2" INSERT "$A_KEY_ID" '{"family_name":"L2","given_name":"l"}'
    cmd "$(uid 105)" "$EDGE1" INSERT "$A_KEY_ID" '{"family_name":"E1","given_name":"e"}'
    cmd "$(uid 106)" "$EDGE2" INSERT "$A_KEY_ID" '{"family_name":"E2","given_name":"e"}'
} >"$T_DIR/pairs.jsonl"
kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -H content-type=application/json \
    <"$T_DIR/pairs.jsonl" || fail "kcat failed"

pgs_worker_start a
pgs_wait_applied $((N + 1 + 3)) 120
deadline=$((SECONDS + 60))
while :; do
    dead=$(pgs_dlq_count)
    [ "$dead" -ge 3 ] && break
    [ $SECONDS -lt $deadline ] || fail "only $dead of 3 dead letters within 60 s"
    sleep 1
done
sleep 2
pgs_worker_stop "$W_PID"

# 1. one lane for every spelling, in order
row=$(pgs_scalar "$T_DB" "SELECT version || ',' || given_name FROM clinic.patients WHERE id = '$P'")
[ "$row" = "$((N + 1)),v$N" ] || fail "patient $P is at '$row', expected version $((N + 1)) and v$N"

# 2. each row under its own clinic, nothing else written
rows=$(pgs_scalar "$T_DB" "SELECT string_agg(left(clinic_id, 3) || length(clinic_id) || ':' || family_name, ',' ORDER BY clinic_id)
                           FROM clinic.patients WHERE id = '$A_KEY_ID'")
[ "$rows" = "A1:A-row,EEE128:E1,EEE128:E2" ] || fail "rows of $A_KEY_ID: $rows"
dl=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(sorted(r["code"] for r in rows)))
for r in rows:
    assert "\x1f" not in (r.get("message") or ""), "the clinic id is echoed in a message"
' "$T_DIR/dlq.jsonl") || fail "dead letters: $(cat "$T_DIR/dlq.jsonl")"
[ "$dl" = "VALIDATE_BAD_CLINIC_ID VALIDATE_BAD_CLINIC_ID VALIDATE_BAD_CLINIC_ID" ] ||
    fail "dead letters: $dl (expected three VALIDATE_BAD_CLINIC_ID)"
echo "ok: $N UPDATEs in four uuid spellings applied in order as one lane;" \
    "the collision pairs dead-lettered or written each under its own clinic"
