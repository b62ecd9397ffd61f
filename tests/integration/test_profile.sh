#!/usr/bin/env bash
# Statement profiles and the slow-shape EXPLAIN, against real Kafka and
# PostgreSQL. 100 patients are inserted, then UPDATEs of them flow steadily
# (every value carries a PHI marker) while a session holds clinic.patients
# in SHARE ROW EXCLUSIVE mode for 2.5 s, so the UPDATE shape's statements
# wait. Then: the shape's row in `pgscribe profile` shows a p99 over
# profile.slow_p99_ms; exactly one EXPLAIN plan is logged for it, a generic
# one (its index condition reads $n, not the row's id), with no value; a
# second slow window within profile.explain_interval_s logs none; /metrics
# holds the statement histogram and counters (promtool-valid); the rolled
# back EXPLAIN left no row behind.
. "$(dirname "$0")/lib.sh"
command -v kcat >/dev/null || fail "kcat is needed (scripts/deps.sh)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# every command single-row: shapes patients/INSERT/single, patients/UPDATE/single
T_EXTRA_CONF="[http]
listen = 127.0.0.1:$PORT
[apply]
multi_row_min = 1000
[profile]
window_ms = 1000
slow_p99_ms = 400
explain_interval_s = 600
explain_timeout_ms = 10000"
T_PARTITIONS=4
pgs_test_init profile
URL=http://127.0.0.1:$PORT
MARK=PHI-MARKER-7Q

# send_batch FROM COUNT: COUNT commands, command ids FROM..; the first 100
# INSERT patients 1..100, the later ones UPDATE them in turn; values marked
send_batch() {
    python3 - "$1" "$2" "$MARK" >"$T_DIR/batch.$1" <<'PY'
import json, sys
start, n, mark = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(start, start + n):
    pid = "5a1e0c2d-3b4f-4d5e-8f60-%012d" % ((i - 1) % 100 + 1)
    op = "INSERT" if i <= 100 else "UPDATE"
    cmd = {"command_id": "00000000-0000-4000-8000-%012d" % i, "clinic_id": "clinic-p",
           "actor": "user:1", "entity": "patients", "op": op, "key": {"id": pid},
           "data": {"given_name": "%s-given-%d" % (mark, i), "mrn": "%s-mrn-%d" % (mark, i)},
           "issued_at": 1700000000123}
    print("clinic-p/patients/%s\t%s" % (pid, json.dumps(cmd)))
PY
    kcat -P -b "$PGSCRIBE_KAFKA" -t "$T_RUN.commands" -K $'\t' -H content-type=application/json \
        -l "$T_DIR/batch.$1" || fail "kcat could not produce"
}
SENT=0
# flow SECONDS: 5 commands every 0.2 s
flow() {
    local until=$((SECONDS + $1))
    while [ $SECONDS -lt "$until" ]; do
        send_batch $((SENT + 1)) 5
        SENT=$((SENT + 5))
        sleep 0.2
    done
}
# hold_lock SECONDS: a session holds the table against INSERTs meanwhile
hold_lock() {
    pgs_psql "$T_DB" -c "BEGIN; LOCK TABLE clinic.patients IN SHARE ROW EXCLUSIVE MODE;
                         SELECT pg_sleep($1); COMMIT;" >/dev/null &
    T_PIDS+=("$!")
    LOCK_PID=$!
}
log_headers() { grep -c "slow statement shape stream=commands entity=patients op=UPDATE form=single" \
    "$T_DIR/worker-a.log" || true; }

pgs_worker_start a
send_batch 1 100
SENT=100
pgs_wait_applied $SENT 60
flow 2
pgs_wait_applied $SENT 60
"$PGSCRIBE_BIN" profile -c "$T_CONF" >"$T_DIR/profile0.txt" || fail "pgscribe profile failed"
grep -q '^commands/patients/UPDATE/single ' "$T_DIR/profile0.txt" ||
    fail "no patients/INSERT/single row: $(cat "$T_DIR/profile0.txt")"
[ "$(log_headers)" -eq 0 ] || fail "an EXPLAIN was logged before any statement was slow"

note "slow window 1: the table is locked for 2.5 s while commands flow"
hold_lock 2.5
flow 6
wait "$LOCK_PID"
deadline=$((SECONDS + 30))
until [ "$(log_headers)" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "no EXPLAIN logged for the slow shape within 30 s"
    flow 1
done
pgs_wait_applied $SENT 60

"$PGSCRIBE_BIN" profile --url "$URL" >"$T_DIR/profile1.txt" || fail "pgscribe profile --url failed"
cat "$T_DIR/profile1.txt" >&2
python3 - "$T_DIR/profile1.txt" <<'PY' || fail "the shape's profile row is wrong"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith("commands/patients/UPDATE/single ")]
assert len(rows) == 1, rows
r = rows[0]
calls, rows_, p99, mx, errors, explains = int(r[1]), int(r[2]), float(r[5]), float(r[6]), int(r[8]), int(r[9])
assert calls > 0 and rows_ > 0, r
assert p99 >= 400, "p99 %s ms is under the 400 ms threshold" % p99
assert mx >= p99, "max %s ms under p99" % mx
assert explains == 1, "explains %d" % explains
assert r[10] != "-", "no last-explain time"
PY
curl -sf --max-time 5 "$URL/profile" >"$T_DIR/profile.json" || fail "/profile did not answer"
python3 - "$T_DIR/profile.json" <<'PY' || fail "/profile JSON is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["shapes"] if (x["entity"], x["op"], x["form"]) == ("patients", "UPDATE", "single")]
assert len(s) == 1 and s[0]["explains"] == 1 and s[0]["plan"], s
assert s[0]["slow_windows"] >= 1, s
import re
assert re.search(r"\$[0-9]+", s[0]["plan"]), "the plan is not generic: " + s[0]["plan"]
PY

# the logged plan: generic ($n), and no value of any command
plan=$(grep "plan patients/UPDATE/single |" "$T_DIR/worker-a.log" || true)
[ -n "$plan" ] || fail "no plan lines logged"
grep -q 'Update on patients' <<<"$plan" || fail "the plan lines hold no plan: $plan"
# a custom plan would name the row's id here; the generic one names its parameter
grep -qE 'Index Cond: .*\(id = \$[0-9]+\)' <<<"$plan" ||
    fail "the plan's index condition reads no \$n: not a generic plan: $plan"
if grep -q "$MARK\|5a1e0c2d" "$T_DIR/worker-a.log"; then
    fail "the worker log holds a command value: $(grep -m3 "$MARK\|5a1e0c2d" "$T_DIR/worker-a.log")"
fi
grep -q "$MARK" "$T_DIR/profile.json" && fail "/profile holds a command value"

note "slow window 2 within the explain interval: no second EXPLAIN"
hold_lock 2.5
flow 6
wait "$LOCK_PID"
flow 4
pgs_wait_applied $SENT 60
[ "$(log_headers)" -eq 1 ] || fail "$(log_headers) EXPLAINs logged for the shape, expected exactly 1"
python3 - "$URL/profile" <<'PY' || fail "the second slow window did not register"
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1], timeout=5))
s = [x for x in d["shapes"] if (x["entity"], x["op"], x["form"]) == ("patients", "UPDATE", "single")][0]
assert s["slow_windows"] >= 2, "the second lock made no slow window: %d" % s["slow_windows"]
assert s["explains"] == 1, s["explains"]
PY

curl -sf --max-time 5 "$URL/metrics" >"$T_DIR/metrics.txt" || fail "/metrics did not answer"
promtool check metrics <"$T_DIR/metrics.txt" >&2 || fail "/metrics does not pass promtool"
grep -q '^pgscribe_statement_latency_seconds_bucket{entity="patients",op="UPDATE",form="single",le="+Inf"} ' \
    "$T_DIR/metrics.txt" || fail "no statement latency histogram for patients/INSERT/single"
grep -q '^pgscribe_statement_latency_seconds_count{entity="patients",op="UPDATE",form="single"} ' \
    "$T_DIR/metrics.txt" || fail "no statement latency count"
grep -q '^pgscribe_statement_explains_total{entity="patients",op="UPDATE",form="single"} 1$' \
    "$T_DIR/metrics.txt" || fail "pgscribe_statement_explains_total is not 1"
execs=$(sed -n 's/^pgscribe_statement_executions_total{entity="patients",op="UPDATE",form="single"} //p' "$T_DIR/metrics.txt")
rows=$(sed -n 's/^pgscribe_statement_rows_total{entity="patients",op="UPDATE",form="single"} //p' "$T_DIR/metrics.txt")
[ "${rows:-0}" -eq $((SENT - 100)) ] || fail "statement rows $rows, expected $((SENT - 100)) updates applied"
[ "${execs:-0}" -ge $((SENT - 100)) ] || fail "statement executions $execs, fewer than the $((SENT - 100)) updates"

# EXPLAIN ANALYZE ran the write in a transaction rolled back: every command once
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")" -eq "$SENT" ] ||
    fail "the audit trail does not hold exactly the $SENT commands' rows"
[ "$(pgs_scalar "$T_DB" "SELECT sum(version) FROM clinic.patients")" -eq "$SENT" ] ||
    fail "the patients' versions do not add up to the $SENT commands applied"
pgs_worker_stop "$W_PID"
echo "ok: $SENT commands; 1 EXPLAIN over 2 slow windows, generic, no value"
