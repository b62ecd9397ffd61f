#!/usr/bin/env bash
# A dead letter the broker refuses. This test does NOT use the stack's real
# Kafka: it runs on librdkafka's in-memory mock cluster (`pgscribe broker
# --brokers 2`) as the fault injector, driven through its control FIFO; the
# PostgreSQL is the stack's real one.
#
# One invalid command (unknown entity) and then 30 good ones on a one-partition
# commands topic; broker 2, the leader of the dead-letter topic, refuses the
# next 6 Produce requests with TOPIC_AUTHORIZATION_FAILED (a permanent error:
# librdkafka does not retry it, each one is a failed delivery report). The
# worker must record each refusal, produce the dead letter again from its main
# loop after a backoff, show it as dlq_pending meanwhile, and deliver it once
# the broker accepts: one dead letter on the topic, the 30 good commands
# applied, and the partition's offset past all 31 (a second worker consumes
# nothing).
. "$(dirname "$0")/lib.sh"
pgs_test_init dlq_refused
GOOD=30
REFUSALS=6
t_start=$SECONDS

pgs_mock_cluster_start 2
sed -i 's/^interval_ms = 1000$/interval_ms = 300/' "$T_CONF"

ctl() {
    local before
    before=$(grep -c "broker: \(ok\|error\)" "$T_DIR/broker.log" || true)
    echo "$*" >&9
    local deadline=$((SECONDS + 15))
    until [ "$(grep -c "broker: \(ok\|error\)" "$T_DIR/broker.log" || true)" -gt "$before" ]; do
        [ $SECONDS -lt $deadline ] || fail "mock broker did not answer '$*'"
        sleep 0.05
    done
    CTL_ANSWER=$(grep "broker: \(ok\|error\)" "$T_DIR/broker.log" | tail -n 1)
    case "$CTL_ANSWER" in
    "pgscribe broker: ok $*" | "pgscribe broker: ok $*: "*) ;;
    *) fail "mock broker refused '$*': $CTL_ANSWER" ;;
    esac
    note "$(date +%T) broker: $*"
}

ctl topic "$T_RUN.commands" 1
for t in commands.dlq audit audit.dlq metrics; do
    ctl topic "$T_RUN.$t" 4
done
ctl leader "$T_RUN.commands" 0 1
for p in 0 1 2 3; do
    ctl leader "$T_RUN.commands.dlq" "$p" 2
    ctl leader "$T_RUN.metrics" "$p" 1
    ctl leader "$T_RUN.audit" "$p" 1
    ctl leader "$T_RUN.audit.dlq" "$p" 1
done

python3 - "$T_DIR/bad.jsonl" <<'PY'
import json, sys, uuid
with open(sys.argv[1], "w") as out:
    out.write(json.dumps({
        "command_id": str(uuid.uuid4()), "clinic_id": "clinic-001",
        "actor": "user-1", "entity": "no_such_entity", "op": "INSERT",
        "key": {"id": str(uuid.uuid4())}, "data": {"notes": "x"},
        "expected_version": None, "issued_at": 1704067200000}) + "\n")
PY
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/bad.jsonl" --no-progress ||
    fail "producing the invalid command failed"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $GOOD --clinics 2 --seed 5 --no-progress \
    >"$T_DIR/produce.log" 2>&1 || fail "producing the good commands failed"
ctl errors Produce $REFUSALS TOPIC_AUTHORIZATION_FAILED 2

pgs_worker_start a
LOG=$T_DIR/worker-a.log
deadline=$((SECONDS + 90))
until grep -q "delivered after a retry" "$LOG"; do
    kill -0 "$W_PID" 2>/dev/null || fail "the worker died while its dead letter was refused"
    [ $SECONDS -lt $deadline ] || fail "the refused dead letter was not delivered within 90 s"
    sleep 0.5
done
ctl pending 2 Produce
[ "${CTL_ANSWER##*: }" = 0 ] || fail "the broker still holds Produce errors: $CTL_ANSWER"
refused=$(grep -c "not acknowledged (try" "$LOG" || true)
[ "$refused" -eq $REFUSALS ] || fail "$refused refusals recorded, expected $REFUSALS"
grep -q "interval: .* dlq_pending=1" "$LOG" ||
    fail "no interval line showed the refused dead letter as pending"
grep -q "rd_kafka_poll\|recursive" "$LOG" && fail "the log shows a poll from a callback"
pgs_wait_applied $GOOD 60
# the partition's committed offset moves past the dead letter and the rest
deadline=$((SECONDS + 30))
until [ "$(grep "interval: " "$LOG" | tail -n 1 | grep -c "dlq_pending=0")" -eq 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "dlq_pending did not return to 0"
    sleep 0.5
done
pgs_worker_stop "$W_PID"
grep -q "stopped: consumed=$((GOOD + 1)) .* dead_lettered=1 dlq_pending=0" "$LOG" ||
    fail "exit summary: $(grep 'stopped:' "$LOG")"

pgs_worker_start b
sleep 3
pgs_worker_stop "$W_PID"
grep -q "stopped: consumed=0 " "$T_DIR/worker-b.log" ||
    fail "a second worker consumed again: $(grep 'stopped:' "$T_DIR/worker-b.log")"

"$PGSCRIBE_BIN" replay -c "$T_CONF" --list --timeout-ms 10000 >"$T_DIR/dlq.jsonl" ||
    fail "replay --list failed"
on_topic=$(wc -l <"$T_DIR/dlq.jsonl")
[ "$on_topic" -eq 1 ] || fail "dead-letter topic holds $on_topic dead letters, expected 1"
grep -q '"code":"UNKNOWN_ENTITY"\|UNKNOWN_ENTITY' "$T_DIR/dlq.jsonl" ||
    fail "the dead letter lacks its reason: $(cat "$T_DIR/dlq.jsonl")"

kill -TERM "$B_PID"
wait "$B_PID" || fail "mock broker exited with $? after SIGTERM"
echo "ok: a dead letter refused $REFUSALS times (mock cluster) was retried from the loop with" \
    "backoff and delivered; $GOOD later commands applied, the partition committed past all," \
    "$((SECONDS - t_start)) s"
