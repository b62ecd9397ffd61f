#!/usr/bin/env bash
# One log format, against real Kafka and PostgreSQL. A worker applies a load,
# dead-letters one command (one warn line with topic, partition, offset,
# command id, clinic, class and code, never the command's values), then the
# real broker is stopped for ~10 s: the worker writes its own warn line naming
# the broker, /readyz answers 503 until Kafka is back, an info line says it
# is reachable again and the rest of the load applies. Every stderr line of
# that worker parses as strict logfmt and none is librdkafka's raw `%N|...`
# line. A second worker with log.format = json writes only JSON objects with
# ts, level and msg.
. "$(dirname "$0")/lib.sh"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_EXTRA_CONF="[http]
listen = 127.0.0.1:$PORT"
T_PARTITIONS=4
pgs_test_init log_format
export PGS_STACK_DIR
# Kafka is shared by the tests after this one: back and healthy on any exit
_log_format_exit() {
    local rc=$?
    set +e
    if ! "$REPO/scripts/kafka.sh" status >/dev/null 2>&1; then
        "$REPO/scripts/kafka.sh" start >>"$T_DIR/kafka.log" 2>&1 ||
            echo "WARN: Kafka could not be started again: $(tail -n 5 "$T_DIR/kafka.log")" >&2
    fi
    (exit $rc)
    pgs_test_cleanup
    exit $rc
}
trap _log_format_exit EXIT
URL=http://127.0.0.1:$PORT
code() { curl -s -o "$T_DIR/body" -w '%{http_code}' --max-time 5 "$URL$1" || true; }
BROKER=$PGSCRIBE_KAFKA
SENTINEL=PHI-SENTINEL-7f3a91
DEAD_ID=0b6c8e2a-1d4f-4e5a-9c7b-3a2f1e0d9c8b

pgs_worker_start a
A=$W_PID
LOG=$T_DIR/worker-a.log
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count 1000 --clinics 4 --seed 11 --no-progress >/dev/null ||
    fail "producer failed"
# an entity the catalog does not know: a dead letter (validate)
printf '{"command_id":"%s","clinic_id":"clinic-003","actor":"svc-test","entity":"no_such_table","op":"INSERT","key":{"id":"5b1f6a2e-0000-4000-8000-00000000dead"},"data":{"name":"%s"},"issued_at":1700000000000}\n' \
    "$DEAD_ID" "$SENTINEL" >"$T_DIR/dead.jsonl"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/dead.jsonl" --no-progress 2>/dev/null ||
    fail "producing the invalid command failed"
pgs_wait_applied 1000 120
deadline=$((SECONDS + 30))
until grep -q "module=dlq .*command_id=$DEAD_ID" "$LOG"; do
    [ $SECONDS -lt $deadline ] || fail "no dead-letter line for $DEAD_ID"
    sleep 0.2
done
n=$(grep -c "command_id=$DEAD_ID" "$LOG")
[ "$n" -eq 1 ] || fail "$n lines name the dead-lettered command, expected 1"
dl=$(grep "command_id=$DEAD_ID" "$LOG")
note "dead letter: $dl"
for want in "level=warn" "module=dlq" "topic=$T_RUN.commands" "partition=[0-9]" "offset=[0-9]" \
    "clinic=clinic-003" "class=validate" "code=[A-Z_]"; do
    grep -q " $want" <<<"$dl" || fail "dead-letter line lacks $want: $dl"
done
[ "$(code /readyz)" = 200 ] || fail "/readyz not 200 before the outage: $(cat "$T_DIR/body")"

# the broker goes away for ~10 s
note "stopping Kafka"
t0=$SECONDS
"$REPO/scripts/kafka.sh" stop >>"$T_DIR/kafka.log" 2>&1 || fail "kafka.sh stop failed"
not_ready=0
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    c=$(code /readyz)
    if [ "$c" != 200 ] && [ "$c" != 000 ]; then
        not_ready=1
        curl -s --max-time 5 "$URL/readyz?verbose" >"$T_DIR/readyz-down.txt" || true
        break
    fi
    sleep 0.5
done
[ $not_ready -eq 1 ] || fail "/readyz kept answering 200 while Kafka was down"
grep -q '^\[-\]kafka' "$T_DIR/readyz-down.txt" ||
    fail "/readyz?verbose does not name the kafka check: $(cat "$T_DIR/readyz-down.txt")"
deadline=$((SECONDS + 20))
until grep -q "level=warn .*module=kafka msg=\"kafka unreachable\".*brokers=$BROKER" "$LOG"; do
    [ $SECONDS -lt $deadline ] || fail "no warn line naming the broker $BROKER"
    sleep 0.5
done
while [ $((SECONDS - t0)) -lt 10 ]; do sleep 0.5; done
warns=$(grep -c 'msg="kafka unreachable"' "$LOG")
note "Kafka back after $((SECONDS - t0)) s; $warns unreachable line(s)"
# bounded: at most one line per cause (3) every 10 s, plus the first of each
[ "$warns" -le 9 ] || fail "$warns unreachable lines in ~10 s: not rate-bounded"
"$REPO/scripts/kafka.sh" start >>"$T_DIR/kafka.log" 2>&1 || fail "kafka.sh start failed"

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count 2000 --clinics 4 --seed 12 --no-progress >/dev/null ||
    fail "producer failed after the restart"
pgs_wait_applied 3000 180
deadline=$((SECONDS + 60))
until [ "$(code /readyz)" = 200 ]; do
    [ $SECONDS -lt $deadline ] || fail "/readyz not 200 after Kafka returned: $(cat "$T_DIR/body")"
    sleep 0.5
done
grep -q 'level=info .*msg="kafka reachable again"' "$LOG" || fail "no 'kafka reachable again' line"
pgs_worker_stop "$A"
pgs_forget_pid "$A"

# every line strict logfmt; no raw librdkafka line; no value of a command
python3 - "$LOG" <<'PY' || fail "worker a's log is not strict logfmt"
import re, sys
key = r'[A-Za-z_][A-Za-z0-9_.\-]*'
val = r'(?:"(?:[^"\\\x00-\x1f]|\\["\\n])*"|[^\s"=\\]+)'
pair = re.compile(r'(%s)=(%s)' % (key, val))
bad = 0
n = 0
for ln, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="strict"), 1):
    line = line.rstrip("\n")
    n += 1
    pos, keys = 0, []
    while pos < len(line):
        m = pair.match(line, pos)
        if not m:
            break
        keys.append(m.group(1))
        pos = m.end()
        if pos < len(line):
            if line[pos] != " ":
                break
            pos += 1
    if pos != len(line) or keys[:5] != ["ts", "level", "worker", "module", "msg"] or \
            len(set(keys)) != len(keys):
        print("line %d does not parse: %r" % (ln, line), file=sys.stderr)
        bad += 1
assert n > 20, n
sys.exit(1 if bad else 0)
PY
! grep -E '^%[0-7]\|' "$LOG" || fail "a raw librdkafka line reached stderr"
! grep -q "$SENTINEL" "$LOG" || fail "a command value reached the log"
grep -q 'module=kafka .*fac=' "$LOG" || note "(no librdkafka log line in this run)"

# log.format = json: every line one JSON object with ts, level, msg
printf '[log]\nformat = json\n' >>"$T_CONF"
pgs_worker_start b
B=$W_PID
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count 200 --clinics 2 --seed 13 --no-progress >/dev/null ||
    fail "producer failed"
pgs_wait_applied 3200 120
pgs_worker_stop "$B"
pgs_forget_pid "$B"
python3 - "$T_DIR/worker-b.log" <<'PY' || fail "worker b's log is not JSON lines"
import json, sys
n = 0
for ln, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    o = json.loads(line)
    assert isinstance(o, dict), (ln, line)
    for k in ("ts", "level", "msg"):
        assert isinstance(o.get(k), str), (ln, k, line)
    assert o["level"] in ("debug", "info", "warn", "error"), line
    n += 1
assert n > 5, n
PY
grep -q '"msg":"stopped: consumed=' "$T_DIR/worker-b.log" || fail "json run: no stop summary"
echo "log format: logfmt and json lines parse, dead letter and unreachable lines as specified"
