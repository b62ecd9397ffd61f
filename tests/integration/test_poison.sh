#!/usr/bin/env bash
# 1% poison: 200 commands that violate a CHECK constraint mixed into 20 000 →
# exactly those are dead-lettered, with correct headers and no PHI, and every
# other command is applied; once the constraint is dropped, `pgscribe replay`
# re-produces them and the worker applies them.
. "$(dirname "$0")/lib.sh"
# multi-row statements from two commands of a shape on, so they carry most
# of this load (the default threshold leaves the loadgen mix to single ones)
export T_EXTRA_CONF=$'[apply]\nmulti_row_min = 2'
pgs_test_init poison
NGOOD=19800
NBAD=200
N=$((NGOOD + NBAD))
BAD_QUANTITY=5000

pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions
    ADD CONSTRAINT quantity_limit CHECK (quantity <= 1000)"

# The good commands go to a scratch topic: only the mixed file reaches the
# commands topic.
"$PGSCRIBE_BIN" produce -c "$T_CONF" --topic "$T_RUN.scratch" --count $NGOOD --clinics 20 \
    --seed 5 --emit "$T_DIR/good.jsonl" --no-progress >/dev/null
[ "$(wc -l <"$T_DIR/good.jsonl")" -eq $NGOOD ] || fail "good.jsonl does not hold $NGOOD commands"
python3 "$REPO/tests/integration/poison_commands.py" "$T_DIR/good.jsonl" "$T_DIR/mixed.jsonl" \
    "$T_DIR/bad_keys.txt" --bad $NBAD --seed 11 --quantity $BAD_QUANTITY
[ "$(wc -l <"$T_DIR/mixed.jsonl")" -eq $N ] || fail "mixed.jsonl does not hold $N commands"
out=$("$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/mixed.jsonl" --no-progress 2>&1)
echo "$out" | grep -q "^produced $N commands.* 0 failed" || fail "produce: $out"

pgs_worker_start a
pgs_wait_applied $NGOOD 600
deadline=$((SECONDS + 120))
while :; do
    dead=$(pgs_metrics_sum dead_lettered)
    [ "$dead" -ge $NBAD ] && break
    [ $SECONDS -lt $deadline ] || fail "metrics topic: only $dead of $NBAD dead letters within 120 s"
    sleep 1
done
pgs_worker_stop "$W_PID"
[ "$dead" -eq $NBAD ] || fail "metrics topic: $dead dead letters, expected $NBAD"
applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied" -eq $NGOOD ] || fail "applied_commands holds $applied rows after stop, expected $NGOOD"

# The dead letters: exactly the bad commands, with complete, PHI-free headers.
"$PGSCRIBE_BIN" replay -c "$T_CONF" --list >"$T_DIR/dlq.jsonl" 2>"$T_DIR/replay-list.err" ||
    fail "replay --list failed: $(cat "$T_DIR/replay-list.err")"
python3 - "$T_DIR/dlq.jsonl" "$T_DIR/bad_keys.txt" "$T_RUN.commands" "$BAD_QUANTITY" <<'PY' ||
import json, re, sys
path, keys_path, topic, value = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
want_keys = set(open(keys_path).read().split())
problems = []
if len(rows) != len(want_keys):
    problems.append("%d dead letters listed, expected %d" % (len(rows), len(want_keys)))
rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
for r in rows:
    where = "dead letter at %s/%s" % (r.get("partition"), r.get("offset"))
    checks = [
        ("class", r.get("class") == "db-permanent"),
        ("code", r.get("code") == "23514"),
        ("source_topic", r.get("source_topic") == topic),
        ("attempts", isinstance(r.get("attempts"), int) and r["attempts"] >= 1),
        ("worker", isinstance(r.get("worker"), str) and r["worker"] != ""),
        ("failed_at", isinstance(r.get("failed_at"), str) and rfc3339.match(r["failed_at"])),
        ("message", isinstance(r.get("message"), str) and r["message"] != ""
         and value not in r["message"]),
        ("source_partition", isinstance(r.get("source_partition"), int)),
        ("source_offset", isinstance(r.get("source_offset"), int)),
        ("no value printed", "value" not in r),
    ]
    for name, ok in checks:
        if not ok:
            problems.append("%s: bad %s in %s" % (where, name, json.dumps(r)))
pairs = {(r.get("source_partition"), r.get("source_offset")) for r in rows}
if len(pairs) != len(rows):
    problems.append("%d distinct source (partition, offset) pairs among %d dead letters"
                    % (len(pairs), len(rows)))
got_keys = {r.get("key") for r in rows}
for k in sorted(want_keys - got_keys)[:5]:
    problems.append("bad command %s was not dead-lettered" % k)
for k in sorted(got_keys - want_keys)[:5]:
    problems.append("%s was dead-lettered but is not a bad command" % k)
for p in problems[:20]:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    fail "the dead letters differ from the bad commands (see above)"
msg=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["message"])' \
    "$T_DIR/dlq.jsonl")

# Every good command applied, no bad row written.
bad_ids=$(sed 's|.*/||; s|.*|'"'"'&'"'"'|' "$T_DIR/bad_keys.txt" | paste -sd,)
bad_rows=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.prescriptions WHERE id IN ($bad_ids)")
[ "$bad_rows" -eq 0 ] || fail "$bad_rows bad prescriptions were written despite the constraint"
pgs_reference "$T_DIR/good.jsonl"
pgs_compare_tables || fail "tables differ from the reference of the good commands"

# Filters, counted without producing.
dry() { "$PGSCRIBE_BIN" replay -c "$T_CONF" --dry-run "$@"; }
expect_start() { # LABEL PREFIX OUTPUT
    case "$3" in
    "$2"*) ;;
    *) fail "$1: expected \"$2...\", got: $3" ;;
    esac
}
want3=$(grep -c '^clinic-003/' "$T_DIR/bad_keys.txt" || true)
want34=$(grep -c '^clinic-00[34]/' "$T_DIR/bad_keys.txt" || true)
[ "$want3" -gt 0 ] && [ "$want34" -gt "$want3" ] || fail "seed gives no clinic-003/004 poison"
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
expect_start "--clinic clinic-003" "would replay $want3 of $want3 matching " \
    "$(dry --clinic clinic-003)"
expect_start "--clinic clinic-003 --clinic clinic-004" "would replay $want34 of $want34 matching " \
    "$(dry --clinic clinic-003 --clinic clinic-004)"
expect_start "--code 22P02" "would replay 0 of 0 matching " "$(dry --code 22P02)"
expect_start "--class decode --code 23514" "would replay 0 of 0 matching " \
    "$(dry --class decode --code 23514)"
expect_start "--since $later" "would replay 0 of 0 matching " "$(dry --since "$later")"
expect_start "--since 2020 --until $later" "would replay $NBAD of $NBAD matching " \
    "$(dry --since 2020-01-01T00:00:00.000Z --until "$later")"
rc=0
dry --since yesterday >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--since yesterday: exit $rc, expected 2"
rc=0
"$PGSCRIBE_BIN" replay -c "$T_CONF" --list --clinic clinic-003 >"$T_DIR/dlq-003.jsonl" || rc=$?
[ $rc -eq 0 ] || fail "replay --list --clinic clinic-003 exited $rc"
listed3=$(grep -c '"key":"clinic-003/' "$T_DIR/dlq-003.jsonl" || true)
[ "$listed3" -eq "$want3" ] && [ "$(wc -l <"$T_DIR/dlq-003.jsonl")" -eq "$want3" ] ||
    fail "--list --clinic clinic-003 listed $(wc -l <"$T_DIR/dlq-003.jsonl") line(s), expected $want3"

# Fix the cause, replay, apply.
pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions DROP CONSTRAINT quantity_limit"
out=$("$PGSCRIBE_BIN" replay -c "$T_CONF" --class db-permanent --code 23514) ||
    fail "replay exited with an error: $out"
expect_start "replay" "replayed $NBAD of $NBAD matching dead letter(s) (0 skipped, 0 failed" "$out"
if command -v kcat >/dev/null; then
    # exactly the dead letters were replayed (dry runs and --list produced
    # nothing), with their original headers and none of pgscribe's
    kcat -C -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -o beginning -e -q -f '%h\n' \
        >"$T_DIR/headers.txt"
    [ "$(wc -l <"$T_DIR/headers.txt")" -eq $((N + NBAD)) ] ||
        fail "commands topic holds $(wc -l <"$T_DIR/headers.txt") messages, expected $((N + NBAD))"
    ! grep -Eq '(^|,)pgscribe\.' "$T_DIR/headers.txt" || fail "a replayed message kept pgscribe.* headers"
    ct=$(grep -c '^content-type=' "$T_DIR/headers.txt" || true)
    [ "$ct" -eq $((N + NBAD)) ] || fail "only $ct messages carry their content-type header"
fi

pgs_worker_start b
pgs_wait_applied $N 300
pgs_worker_stop "$W_PID"
bad_rows=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.prescriptions
    WHERE id IN ($bad_ids) AND quantity = $BAD_QUANTITY")
[ "$bad_rows" -eq $NBAD ] || fail "after replay $bad_rows of $NBAD bad prescriptions exist"
dead=$(pgs_metrics_sum dead_lettered)
[ "$dead" -eq $NBAD ] || fail "metrics topic: $dead dead letters after replay, expected $NBAD"
echo "ok: $NGOOD good commands applied and equal to the reference; $NBAD poison commands" \
    "dead-lettered (db-permanent/23514, message \"$msg\"); filters: clinic-003=$want3," \
    "22P02=0; replayed $NBAD, all applied ($N in applied_commands), no new dead letters"
