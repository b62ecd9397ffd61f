#!/usr/bin/env bash
# Memory stays bounded whatever producers send: 50 000 partial UPDATEs over
# 2 000 distinct column sets of a 24-column table, each a statement shape of
# its own, are all applied while the worker's resident memory stays under a
# stated bound and stops growing; the statement registry holds at most
# apply.max_statements shapes (the least recently used are deallocated on
# every connection). The table also has a generated and an identity-always
# column: the multi-row UPDATEs do not name them (no fallback one by one),
# and a command writing one is dead-lettered as VALIDATE_GENERATED_COLUMN.
. "$(dirname "$0")/lib.sh"
# every command in a statement of its own, so each connection prepares each
# shape it meets: the registry's and the connections' worst case
# (MEM_MAX_STATEMENTS=none leaves the key out, to measure a build without it
# through PGSCRIBE_WORKER_BIN)
# A small backlog and fetch queue keep the baseline low, so that what the
# registry holds shows in the RSS. The connections are a fixed 8: the
# adaptive limit opening more of them late in the load would add their own
# per-connection statement bookkeeping to the growth measured after the
# first fifth (it did, by 9.7 MiB against the 8 MiB bound, in one run).
T_EXTRA_CONF="[apply]
multi_row_min = 1000
backlog_max = 2000
adaptive_in_flight = false
max_in_flight = 8"
T_EXTRA_KAFKA_CONF="consumer.queued.max.messages.kbytes = 2048"
[ "${MEM_MAX_STATEMENTS:-512}" = none ] ||
    T_EXTRA_CONF="$T_EXTRA_CONF
max_statements = ${MEM_MAX_STATEMENTS:-512}"
pgs_test_init memory_bound

ROWS=200
UPDATES=${MEM_UPDATES:-50000}
SHAPES=2000
# Bounds, measured on this load: the worker's VmRSS peaked at ~47 MiB with
# the bounded registry (~50 MiB and still growing without it), so 64 MiB,
# and it grows by at most 8 MiB after the first fifth. The database backends
# serving the worker hold every statement they prepared: their private
# memory peaked at ~200 MiB with apply.max_statements 512 and ~650 MiB with
# an unbounded registry (2 000 statements prepared on each connection), so
# 384 MiB.
RSS_BOUND_KB=${MEM_RSS_BOUND_KB:-65536}
GROWTH_BOUND_KB=${MEM_GROWTH_BOUND_KB:-8192}
BACKEND_BOUND_KB=${MEM_BACKEND_BOUND_KB:-393216}

cols=""
for i in $(seq -w 1 24); do cols="$cols, c$i text"; done
pgs_psql "$T_DB" <<SQL >/dev/null
CREATE TABLE clinic.wide (id uuid, clinic_id text NOT NULL $cols,
    c01_len int GENERATED ALWAYS AS (length(c01)) STORED,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (clinic_id, id));
ALTER TABLE clinic.wide ENABLE ROW LEVEL SECURITY;
ALTER TABLE clinic.wide FORCE ROW LEVEL SECURITY;
CREATE POLICY clinic_isolation ON clinic.wide
    USING (clinic_id = current_setting('pgscribe.clinic_id', true))
    WITH CHECK (clinic_id = current_setting('pgscribe.clinic_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON clinic.wide TO pgscribe_worker;
INSERT INTO clinic.wide (id, clinic_id)
    SELECT ('0e000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
           'clinic-' || lpad((g % 4 + 1)::text, 3, '0')
    FROM generate_series(1, $ROWS) g;
SQL

# The load: update u sets column set u % SHAPES (2 000 distinct subsets of
# the 24 columns) on row u % ROWS; the expected final table is computed here.
python3 - "$T_DIR" "$ROWS" "$UPDATES" "$SHAPES" <<'PY'
import json, random, sys
d, rows, updates, shapes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(12)
cols = ["c%02d" % i for i in range(1, 25)]
sets, seen = [], set()
while len(sets) < shapes:
    s = tuple(sorted(rng.sample(range(24), rng.randint(2, 8))))
    if s not in seen:
        seen.add(s)
        sets.append(s)
final = {}
with open(d + "/updates.jsonl", "w") as f:
    for u in range(updates):
        r = u % rows + 1
        rid = "0e000000-0000-4000-8000-%012d" % r
        clinic = "clinic-%03d" % (r % 4 + 1)
        data = {cols[c]: "v%d" % u for c in sets[u % shapes]}
        final.setdefault(rid, {}).update(data)
        f.write(json.dumps({"command_id": "0f000000-0000-4000-8000-%012d" % u,
                            "clinic_id": clinic, "actor": "svc-mem", "entity": "wide",
                            "op": "UPDATE", "key": {"id": rid}, "data": data,
                            "issued_at": 1700000000000}) + "\n")
    # phase 2, after a SIGHUP to multi_row_min = 2: multi-row UPDATEs of a
    # table with generated columns, two per row
    with open(d + "/phase2.jsonl", "w") as f2:
        for u in range(2 * rows):
            r = u % rows + 1
            rid = "0e000000-0000-4000-8000-%012d" % r
            data = {cols[c]: "w%d" % u for c in sets[u % 7]}
            final.setdefault(rid, {}).update(data)
            f2.write(json.dumps({"command_id": "0f200000-0000-4000-8000-%012d" % u,
                                 "clinic_id": "clinic-%03d" % (r % 4 + 1), "actor": "svc-mem",
                                 "entity": "wide", "op": "UPDATE", "key": {"id": rid},
                                 "data": data, "issued_at": 1700000000000}) + "\n")
    # writing a generated or identity-always column is refused at validation
    for n, col in enumerate(["c01_len", "seq"]):
        f.write(json.dumps({"command_id": "0f100000-0000-4000-8000-%012d" % n,
                            "clinic_id": "clinic-002", "actor": "svc-mem", "entity": "wide",
                            "op": "UPDATE", "key": {"id": "0e000000-0000-4000-8000-%012d" % 1},
                            "data": {col: "7"}, "issued_at": 1700000000000}) + "\n")
with open(d + "/expected.txt", "w") as f:
    for rid in sorted(final):
        f.write("%s|%s\n" % (rid, "|".join(final[rid].get(c, "") for c in cols)))
PY

pgs_worker_start a
log=$T_DIR/worker-a.log
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$W_PID/status"; }
rss_start=$(rss)
: >"$T_DIR/rss.txt"
# every half second: the worker's VmRSS, the private memory (RssAnon) of the
# database backends serving it, where each prepared statement lives, and how
# many commands are applied
(
    while kill -0 "$W_PID" 2>/dev/null; do
        w=$(awk '/^VmRSS:/ {print $2}' "/proc/$W_PID/status" 2>/dev/null)
        q=$(PGOPTIONS="-c client_min_messages=warning" psql -X -At -h "$PGS_PG_HOST" -p "$PGS_PG_PORT" \
            -U postgres -d "$T_DB" -c "SELECT count(*) FROM pgscribe.applied_commands;
            SELECT pid FROM pg_stat_activity WHERE usename = 'pgscribe_worker' AND datname = '$T_DB'" 2>/dev/null)
        n=$(echo "$q" | head -n 1)
        b=0
        for pid in $(echo "$q" | tail -n +2); do
            kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
            b=$((b + ${kb:-0}))
        done
        [ -n "$w" ] && echo "$n $w $b" >>"$T_DIR/rss.txt"
        sleep 0.5
    done
) &
T_PIDS+=("$!")

out=$("$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/updates.jsonl" --no-progress 2>&1)
echo "$out" | grep -q "^produced $((UPDATES + 2)) commands.* 0 failed" || fail "produce: $out"
pgs_wait_applied "$UPDATES" 170
sleep 1
rss_end=$(rss)

# phase 2: multi-row statements over the generated columns, after a reload
sed -i 's/^multi_row_min = .*/multi_row_min = 2/' "$T_CONF"
kill -HUP "$W_PID"
deadline=$((SECONDS + 20))
until grep -q "SIGHUP: configuration reloaded" "$log"; do
    [ $SECONDS -lt $deadline ] || fail "no reload after SIGHUP"
    sleep 0.2
done
out=$("$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/phase2.jsonl" --no-progress 2>&1)
echo "$out" | grep -q "^produced $((2 * ROWS)) commands.* 0 failed" || fail "produce: $out"
pgs_wait_applied $((UPDATES + 2 * ROWS)) 60
# the catalog of before the reload goes once the works consumed under it do
deadline=$((SECONDS + 20))
until grep -q "catalog before the reload freed" "$log" || [ $SECONDS -ge $deadline ]; do
    sleep 0.2
done
pgs_worker_stop "$W_PID"

# the expected final rows, column by column
sel="id::text"
for i in $(seq -w 1 24); do sel="$sel || '|' || coalesce(c$i, '')"; done
pgs_scalar "$T_DB" "SELECT $sel FROM clinic.wide WHERE seq IS NOT NULL ORDER BY id" >"$T_DIR/got.txt"
# rows never updated by the load are not in the expected file
grep -Ff <(cut -d'|' -f1 "$T_DIR/expected.txt") "$T_DIR/got.txt" >"$T_DIR/got_updated.txt"
diff -q "$T_DIR/expected.txt" "$T_DIR/got_updated.txt" >/dev/null ||
    fail "final rows differ from the expected ones: $(diff "$T_DIR/expected.txt" "$T_DIR/got_updated.txt" | head -n 4)"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.wide WHERE c01_len IS DISTINCT FROM length(c01)")" = 0 ] ||
    fail "generated column not kept by the database"

# peaks, and the growth after a fifth of the load
peak=$(awk '{print $2}' "$T_DIR/rss.txt" | sort -n | tail -n 1)
bpeak=$(awk '{print $3}' "$T_DIR/rss.txt" | sort -n | tail -n 1)
fifth=$(awk -v want=$((UPDATES / 5)) '$1 >= want {print $2; exit}' "$T_DIR/rss.txt")
[ -n "$peak" ] && [ -n "$fifth" ] || fail "no RSS samples"
note "worker RSS: start ${rss_start} kB, at $((UPDATES / 5)) applied ${fifth} kB, peak ${peak} kB, end ${rss_end} kB"
note "database backends of the worker, RssAnon summed: peak ${bpeak} kB"
held=$(sed -n 's/.*commands pool: \([0-9]*\) statements held at stop, \([0-9]*\) evicted.*/\1 \2/p' "$log")
note "statement registry at stop: ${held:-no line} (held evicted)"
[ -n "$held" ] || fail "no statement registry line at stop"
set -- $held
[ "$1" -le 512 ] || fail "the registry holds $1 statements, over apply.max_statements 512"
[ "$2" -gt 0 ] || fail "no statement was evicted: the load did not exceed the bound"
[ "$peak" -le "$RSS_BOUND_KB" ] || fail "peak RSS ${peak} kB over the bound ${RSS_BOUND_KB} kB"
[ "$bpeak" -le "$BACKEND_BOUND_KB" ] ||
    fail "the worker's database backends peaked at ${bpeak} kB, over the bound ${BACKEND_BOUND_KB} kB"
[ $((peak - fifth)) -le "$GROWTH_BOUND_KB" ] ||
    fail "RSS grew by $((peak - fifth)) kB after the first fifth (bound ${GROWTH_BOUND_KB} kB)"

grep -q "catalog before the reload freed" "$log" || fail "the catalog of before the reload was not freed"
[ "$(grep -c "multi-row statement of" "$log")" = 0 ] ||
    fail "a multi-row statement failed and fell back: $(grep -m1 "multi-row statement of" "$log")"
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands WHERE command_id::text LIKE '0f2%'")" = $((2 * ROWS)) ] ||
    fail "phase 2 not all applied"
pgs_dlq_count >/dev/null
[ "$(grep -c VALIDATE_GENERATED_COLUMN "$T_DIR/dlq.jsonl")" = 2 ] ||
    fail "writing a generated or identity column: not 2 VALIDATE_GENERATED_COLUMN dead letters"
echo "ok: $UPDATES partial UPDATEs over $SHAPES column sets applied; peak RSS ${peak} kB (bound ${RSS_BOUND_KB} kB), backends ${bpeak} kB (bound ${BACKEND_BOUND_KB} kB), growth after a fifth $((peak - fifth)) kB; registry ${1} held, ${2} evicted; generated/identity columns refused"
