#!/usr/bin/env bash
# Export. One clinic's trail of PGS_EXPORT_EVENTS events (default 1 000 000),
# chained by a superuser through audit.chain() in batches of 10 000 (not via
# Kafka: this tests the export, not the intake); every tenth is a DISCLOSE.
# `pgscribe audit export` as a pgscribe_auditor login:
# - ndjson: peak RSS under 50 MB (/usr/bin/time -v), one line per row, and
#   the whole chain recomputed from the file alone by the reference verifier's
#   logic (docs/audit_verify.py): a recipient can check it; sample rows equal
#   the table's;
# - csv: parses with Python's csv module, same rows and hashes;
# - --from: only the rows recorded since; --disclosures: only the DISCLOSE
#   events, with their fields; --progress draws a bar on stderr.
. "$(dirname "$0")/lib.sh"
pgs_test_init audit_export
PY=${PGS_PYTHON:-/usr/bin/python3}
AUDITOR="host=$PGS_PG_HOST port=$PGS_PG_PORT dbname=$T_DB user=pgs_t_exporter"
N=${PGS_EXPORT_EVENTS:-1000000}
B=10000
[ $((N % B)) -eq 0 ] || fail "PGS_EXPORT_EVENTS must be a multiple of $B"
pgs_psql "$T_DB" -c "DROP ROLE IF EXISTS pgs_t_exporter" -c "CREATE ROLE pgs_t_exporter LOGIN IN ROLE pgscribe_auditor" >/dev/null 2>&1 ||
    pgs_psql "$T_DB" -c "GRANT pgscribe_auditor TO pgs_t_exporter" >/dev/null

t0=$SECONDS
# also one row of another clinic, which must not be exported
pgs_psql "$T_DB" <<SQL >/dev/null
SELECT set_config('pgscribe.clinic_id', 'x-2', false);
SELECT audit.chain(ARRAY[ROW('x-2', NULL, 'event', gen_random_uuid(), NULL, now(), NULL, 'dr', 'DISCLOSE',
    'patients', 'p', NULL, 'SUCCESS', 'org:other', 'TREATMENT', 'd', 'ehr', '{}', 't', 0, 0, NULL, NULL, NULL)::audit.events]);
SELECT set_config('pgscribe.clinic_id', 'x-1', false);
SELECT format('SELECT audit.chain(array_agg(ROW(%L, NULL, %L, gen_random_uuid(), NULL,
    timestamptz %L + i * interval %L, NULL, %L || (i %% 97), CASE WHEN i %% 10 = 0 THEN %L ELSE %L END,
    %L, %L || i, CASE WHEN i %% 7 = 0 THEN ARRAY[%L, %L] END, %L,
    CASE WHEN i %% 10 = 0 THEN %L || (i %% 3) END, CASE WHEN i %% 10 = 0 THEN %L END,
    CASE WHEN i %% 10 = 0 THEN %L END, %L, %L, %L, i %% 12, i, NULL, NULL, NULL)::audit.events ORDER BY i))
    FROM generate_series(%s, %s) i', 'x-1', 'event', '2026-01-01 00:00+00', '1 millisecond',
    'dr-', 'DISCLOSE', 'READ', 'patients', 'p', 'a', 'b"c', 'SUCCESS', 'org:insurer-', 'PAYMENT',
    'claim, "summary"', 'ehr', '{"k": "v\\\\t"}', 'clinic.audit', b * $B + 1, (b + 1) * $B)
  FROM generate_series(0, $N / $B - 1) b
\gexec
SQL
got=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE clinic_id = 'x-1'")
[ "$got" = "$N" ] || fail "prepared $got rows, expected $N"
note "prepared $N rows in $((SECONDS - t0)) s"

# --- ndjson, memory and content
/usr/bin/time -v "$PGSCRIBE_BIN" audit export --conninfo "$AUDITOR" --clinic x-1 --format ndjson \
    -o "$T_DIR/trail.ndjson" 2>"$T_DIR/ndjson.err" || fail "export failed: $(tail -n 20 "$T_DIR/ndjson.err")"
rss=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$T_DIR/ndjson.err")
note "ndjson export: peak RSS ${rss} kB; $(grep '^exported' "$T_DIR/ndjson.err")"
[ "$rss" -lt 51200 ] || fail "peak RSS ${rss} kB, over 50 MB"
grep -q '\[#' "$T_DIR/ndjson.err" && fail "a progress bar although stderr is no terminal and no --progress"
[ "$(wc -l <"$T_DIR/trail.ndjson")" -eq "$N" ] || fail "ndjson holds $(wc -l <"$T_DIR/trail.ndjson") lines"
pgs_psql "$T_DB" -At -F $'\t' -c "SELECT seq, encode(hash, 'hex'), actor, event_id, coalesce(recipient, ''), source_offset
    FROM audit.events WHERE clinic_id = 'x-1' AND seq IN (1, 2, 7, 10, $((N / 2)), $N) ORDER BY seq" >"$T_DIR/sample.tsv"
"$PY" - "$REPO/docs" "$T_DIR/trail.ndjson" "$T_DIR/sample.tsv" <<'PYEOF' || fail "the ndjson export does not verify"
import datetime, json, sys
sys.path.insert(0, sys.argv[1])
import audit_verify as av
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
def us(s):
    return str((datetime.datetime.fromisoformat(s) - EPOCH) // datetime.timedelta(microseconds=1))
def text(v):
    return None if v is None else str(v)
ORDER = ["clinic_id", "seq", "kind", "event_id", "command_id", "occurred_at", "recorded_at", "actor",
         "action", "entity", "row_key", "columns", "outcome", "recipient", "purpose", "description",
         "source", "details", "source_topic", "source_partition", "source_offset", "traceparent"]
sample = {int(l.split("\t")[0]): l.rstrip("\n").split("\t") for l in open(sys.argv[3])}
prev, n = av.ZERO, 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    n += 1
    assert r["clinic_id"] == "x-1" and r["seq"] == n, (n, r)
    assert bytes.fromhex(r["prev_hash"]) == prev, ("prev_hash", n)
    fields = [us(r[k]) if k in ("occurred_at", "recorded_at") else
              r[k] if k == "columns" else text(r[k]) for k in ORDER]
    h = av.link(prev, fields)
    assert h.hex() == r["hash"], ("hash", n)
    if n in sample:
        s = sample[n]
        got = [str(r["seq"]), r["hash"], r["actor"], r["event_id"], r["recipient"] or "", str(r["source_offset"])]
        assert got == s, (got, s)
    prev = h
assert n > 0 and len(sample) == 6
print("recomputed", n, "links")
PYEOF

# --- csv
"$PGSCRIBE_BIN" audit export --conninfo "$AUDITOR" --clinic x-1 --format csv -o "$T_DIR/trail.csv" 2>/dev/null ||
    fail "csv export failed"
"$PY" - "$T_DIR/trail.csv" "$T_DIR/trail.ndjson" "$N" <<'PYEOF' || fail "the csv export is wrong"
import csv, json, sys
with open(sys.argv[1], newline="") as f, open(sys.argv[2]) as nd:
    rd = csv.DictReader(f)
    assert rd.fieldnames[:2] == ["clinic_id", "seq"] and rd.fieldnames[-2:] == ["prev_hash", "hash"], rd.fieldnames
    n = 0
    for row, line in zip(rd, nd):
        n += 1
        j = json.loads(line)
        assert int(row["seq"]) == j["seq"] and row["hash"] == j["hash"] and row["actor"] == j["actor"], n
        assert row["description"] == (j["description"] or ""), n
    assert n == int(sys.argv[3]), n
PYEOF

# --- --from: the rows recorded since the middle row's batch (a batch shares one recorded_at)
from=$(pgs_scalar "$T_DB" "SELECT recorded_at FROM audit.events WHERE clinic_id = 'x-1' AND seq = $((N / 2 + 1))")
read -r first since < <(pgs_scalar "$T_DB" "SELECT min(seq) || ' ' || count(*) FROM audit.events
    WHERE clinic_id = 'x-1' AND recorded_at >= '$from'")
[ "$since" -lt "$N" ] || fail "--from would select everything"
"$PGSCRIBE_BIN" audit export --conninfo "$AUDITOR" --clinic x-1 --from "$from" --progress \
    -o "$T_DIR/half.ndjson" 2>"$T_DIR/half.err" || fail "--from export failed"
[ "$(wc -l <"$T_DIR/half.ndjson")" -eq "$since" ] || fail "--from exported $(wc -l <"$T_DIR/half.ndjson") rows, expected $since"
head -n 1 "$T_DIR/half.ndjson" >"$T_DIR/half.first"
grep -q "\"seq\":$first," "$T_DIR/half.first" || fail "--from does not start at seq $first"
grep -q "100% $since/$since rows" "$T_DIR/half.err" || fail "--progress drew no bar: $(cat "$T_DIR/half.err")"
"$PGSCRIBE_BIN" audit export --conninfo "$AUDITOR" --clinic x-1 --to "$from" --format csv \
    -o "$T_DIR/before.csv" 2>/dev/null || fail "--to export failed"
[ "$(tail -n 1 "$T_DIR/before.csv" | cut -d, -f2)" -eq $((first - 1)) ] || fail "--to does not end at seq $((first - 1))"

# --- disclosures
for fmt in ndjson csv; do
    "$PGSCRIBE_BIN" audit export --conninfo "$AUDITOR" --clinic x-1 --disclosures --format $fmt \
        -o "$T_DIR/disc.$fmt" 2>/dev/null || fail "--disclosures $fmt failed"
done
want=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE clinic_id = 'x-1' AND action = 'DISCLOSE'")
[ "$want" -eq $((N / 10)) ] || fail "the table holds $want disclosures"
"$PY" - "$T_DIR/disc.ndjson" "$T_DIR/disc.csv" "$want" <<'PYEOF' || fail "the disclosures export is wrong"
import csv, json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    n += 1
    assert set(r) >= {"date", "recipient", "purpose", "description", "actor", "entity", "row_key"}, r
    assert r["recipient"].startswith("org:insurer-") and r["purpose"] == "PAYMENT", r
    assert r["description"] == 'claim, "summary"' and r["entity"] == "patients", r
    assert r["seq"] % 10 == 0 and r["row_key"] == "p%d" % r["seq"], r
    assert r["date"] == r["occurred_at"][:10], r
assert n == int(sys.argv[3]), n
with open(sys.argv[2], newline="") as f:
    rows = list(csv.DictReader(f))
assert len(rows) == n and all(x["purpose"] == "PAYMENT" for x in rows), len(rows)
PYEOF

# --- bad arguments
rc=0
"$PGSCRIBE_BIN" audit export --format xml --clinic x-1 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--format xml exited $rc"
rc=0
"$PGSCRIBE_BIN" audit export >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "no --clinic exited $rc"
echo "ok: $N rows exported in constant memory (peak RSS $rss kB), chain recomputed from the ndjson;" \
    "csv parses; --from, --progress and --disclosures"
