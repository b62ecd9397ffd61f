#!/usr/bin/env bash
# Hostile input: each file of hostile/cases is produced raw to the commands
# topic; the worker must survive all of them, dead-letter each with the class
# and code in hostile/expected.tsv (class "applied": applied verbatim instead),
# never echo a value in a dead letter, and leave the schema intact.
. "$(dirname "$0")/lib.sh"
HOSTILE=$REPO/tests/integration/hostile
EXPECTED=$HOSTILE/expected.tsv
SQL_VALUE="'); DROP TABLE clinic.patients; --"
MARKER=PHI-MARKER # in every other value of the corpus

# The 1.1 MB case must get through Kafka to be judged by the worker: clients
# accept up to 5 MB and compress, so the batch stays under the broker's 1 MB.
T_EXTRA_KAFKA_CONF=$'message.max.bytes = 5242880\ncompression.type = lz4'
pgs_test_init hostile

[ "$(grep -v '^#' "$EXPECTED" | cut -f1 | sort)" = "$(ls "$HOSTILE/cases" | sort)" ] ||
    fail "hostile/cases and expected.tsv list different files (run make_corpus.py)"
n_cases=$(grep -vc '^#' "$EXPECTED")
n_applied=$(grep -v '^#' "$EXPECTED" | awk -F'\t' '$2 == "applied"' | wc -l)
n_dead=$((n_cases - n_applied))

"$PGSCRIBE_BIN" produce -c "$T_CONF" --raw-dir "$HOSTILE/cases" --no-progress
pgs_worker_start a
deadline=$((SECONDS + 300))
while :; do
    kill -0 "$W_PID" 2>/dev/null || fail "worker died on hostile input"
    dead=$(pgs_metrics_sum dead_lettered)
    applied=$(pgs_metrics_sum applied)
    [ "$dead" -ge $n_dead ] && [ "$applied" -ge $n_applied ] && break
    [ $SECONDS -lt $deadline ] ||
        fail "after 300 s: $dead of $n_dead dead-lettered, $applied of $n_applied applied"
    sleep 1
done
kill -0 "$W_PID" 2>/dev/null || fail "worker died on hostile input"
pgs_worker_stop "$W_PID"
dead=$(pgs_metrics_sum dead_lettered)
applied=$(pgs_metrics_sum applied)
consumed=$(pgs_metrics_sum consumed)
[ "$dead" -eq $n_dead ] || fail "dead_lettered $dead, expected $n_dead"
[ "$applied" -eq $n_applied ] || fail "applied $applied, expected $n_applied"
[ "$consumed" -eq "$n_cases" ] || fail "consumed $consumed, expected $n_cases"

"$PGSCRIBE_BIN" replay --list -c "$T_CONF" >"$T_DIR/dlq.jsonl" ||
    fail "pgscribe replay --list failed"
python3 - "$EXPECTED" "$T_DIR/dlq.jsonl" "$SQL_VALUE" "$MARKER" "$T_RUN.commands" <<'PY' ||
import json, os, sys
expected_tsv, dlq_path, sql_value, marker, topic = sys.argv[1:]
expected = {}
for line in open(expected_tsv, encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    name, klass, code = line.rstrip("\n").split("\t")
    expected[os.path.splitext(name)[0]] = (klass, code)
letters = [json.loads(l) for l in open(dlq_path, encoding="utf-8") if l.strip()]
problems = []
seen = {}
for d in letters:
    key = d.get("key")
    if key in seen:
        problems.append("%s: dead-lettered twice" % key)
    seen[key] = d
    if key not in expected:
        problems.append("dead letter with unknown key %r" % key)
        continue
    klass, code = expected[key]
    if klass == "applied":
        problems.append("%s: dead-lettered (%s/%s), must be applied" % (key, d["class"], d["code"]))
    elif (d["class"], d["code"]) != (klass, code):
        problems.append("%s: got %s/%s, expected %s/%s" % (key, d["class"], d["code"], klass, code))
    if d.get("source_topic") != topic:
        problems.append("%s: source_topic %r" % (key, d.get("source_topic")))
    msg = d.get("message") or ""
    if marker in msg or sql_value in msg:
        problems.append("%s: dead-letter message repeats a value" % key)
for key, (klass, _) in expected.items():
    if klass != "applied" and key not in seen:
        problems.append("%s: no dead letter" % key)
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
print("%d dead letters checked, %d problems" % (len(letters), len(problems)), file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    fail "dead letters differ from expected.tsv"

for t in patients appointments encounters prescriptions; do
    [ "$(pgs_scalar "$T_DB" "SELECT to_regclass('clinic.$t') IS NOT NULL")" = t ] ||
        fail "clinic.$t is gone"
done
got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients WHERE given_name = \$v\$$SQL_VALUE\$v\$")
[ "$got" = 1 ] || fail "the SQL-looking value was not stored verbatim ($got rows)"
got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients
    WHERE given_name = '$MARKER avro' AND photo = '\\x89504e470d0a'::bytea AND weight_kg = 71.5")
[ "$got" = 1 ] || fail "the valid Avro command was not applied as sent ($got rows)"
got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.patients")
[ "$got" = "$n_applied" ] || fail "clinic.patients holds $got rows, expected $n_applied"
echo "ok: $n_cases hostile messages, $dead dead-lettered as expected, $applied applied"
