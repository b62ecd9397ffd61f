#!/usr/bin/env bash
# Kafka faults while the worker runs. This test does NOT use the stack's real
# Kafka: it runs on librdkafka's in-memory mock cluster (`pgscribe broker
# --brokers 3`) as the fault injector, driven through its control FIFO; the
# PostgreSQL is the stack's real one.
#
# 50 invalid commands (unknown entity) are dead-lettered while broker 3, the
# leader of every dead-letter partition, fails the next 10 Produce requests
# (NOT_LEADER_OR_FOLLOWER): the worker's idempotent dead-letter producer must
# retry through all of them, and exactly 50 dead letters end up on the topic. Then 20 000 good commands over 20 clinics
# are produced at 4 000/s while broker 2 is down for 5 s, 20 Fetch requests
# fail (NOT_LEADER_OR_FOLLOWER) and 10 OffsetCommit requests fail
# (COORDINATOR_NOT_AVAILABLE). Every command must still be applied exactly
# once: the tables equal the one-by-one reference, the metrics topic's applied
# counts sum to 20 000, and the worker stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"
pgs_test_init broker_faults
N=20000
BAD=50
t_start=$SECONDS

# --- the mock cluster, its control FIFO (fd 9) and a config that points at it
pgs_mock_cluster_start 3

# ctl COMMAND: sends one command and waits for the broker's answer, left in
# CTL_ANSWER.
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

for t in commands commands.dlq audit audit.dlq metrics; do
    ctl topic "$T_RUN.$t" 12
done
# Dead letters led by broker 3 only, metrics by broker 1: errors pushed on
# broker 3's own stack then meet the worker's dead-letter producer and nothing
# else (the metrics records it also sends go to broker 1).
for p in $(seq 0 11); do
    ctl leader "$T_RUN.commands.dlq" "$p" 3
    ctl leader "$T_RUN.metrics" "$p" 1
done

# --- 50 dead letters through 10 failing Produce requests
python3 - "$T_DIR/bad.jsonl" "$BAD" <<'PY'
import json, sys, uuid
with open(sys.argv[1], "w") as out:
    for i in range(int(sys.argv[2])):
        out.write(json.dumps({
            "command_id": str(uuid.uuid4()), "clinic_id": "clinic-%03d" % (i % 20 + 1),
            "actor": "user-1", "entity": "no_such_entity", "op": "INSERT",
            "key": {"id": str(uuid.uuid4())}, "data": {"notes": "x"},
            "expected_version": None, "issued_at": 1704067200000 + i}) + "\n")
PY
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/bad.jsonl" --no-progress ||
    fail "producing the invalid commands failed"
ctl errors Produce 10 NOT_LEADER_OR_FOLLOWER 3
pgs_worker_start a
deadline=$((SECONDS + 90))
until [ "$(pgs_metrics_sum dead_lettered)" -ge $BAD ]; do
    kill -0 "$W_PID" 2>/dev/null || fail "the worker died while dead-lettering"
    [ $SECONDS -lt $deadline ] || fail "fewer than $BAD dead letters within 90 s"
    sleep 1
done
ctl pending 3 Produce
[ "${CTL_ANSWER##*: }" = 0 ] ||
    fail "the dead-letter producer did not go through the Produce errors: $CTL_ANSWER"
note "$(date +%T) $BAD dead letters reported, through 10 failed Produce requests"

# --- 20 000 good commands while brokers and requests fail
t_load=$SECONDS
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 11 --rate 4000 \
    --emit "$T_DIR/commands.jsonl" --no-progress >"$T_DIR/produce.log" 2>&1 &
P_PID=$!
T_PIDS+=("$P_PID")
# Request errors first, while the worker is consuming and committing.
sleep 0.5
ctl errors Fetch 20 NOT_LEADER_OR_FOLLOWER
ctl errors OffsetCommit 10 COORDINATOR_NOT_AVAILABLE
sleep 0.5
ctl down 2
sleep 5
ctl up 2
p_rc=0
wait "$P_PID" || p_rc=$?
[ $p_rc -eq 0 ] || fail "the load producer exited with $p_rc: $(tail -n 5 "$T_DIR/produce.log")"
note "$(date +%T) load produced in $((SECONDS - t_load)) s: $(tail -n 1 "$T_DIR/produce.log")"

# pgs_wait_applied, but failing at once if the worker dies under the faults.
deadline=$((SECONDS + 300))
until [ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -ge $N ]; do
    kill -0 "$W_PID" 2>/dev/null || fail "the worker died under the faults"
    [ $SECONDS -lt $deadline ] || fail "not all $N commands applied within 300 s"
    sleep 0.5
done
pgs_wait_applied $N 1
note "$(date +%T) $N applied $((SECONDS - t_load)) s after the load started"
pgs_worker_stop "$W_PID"

distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"
note "$(date +%T) tables compared"

applied=$(pgs_metrics_sum applied)
[ "$applied" -eq $N ] || fail "metrics topic: applied sums to $applied, expected $N"
dead=$(pgs_metrics_sum dead_lettered)
[ "$dead" -eq $BAD ] || fail "metrics topic: dead_lettered sums to $dead, expected $BAD"
dups=$(pgs_metrics_sum duplicates)
note "$(date +%T) metrics read"
# The DLQ topic itself: an idempotent producer retrying must not double one.
"$PGSCRIBE_BIN" replay -c "$T_CONF" --list >"$T_DIR/dlq.jsonl" || fail "replay --list failed"
on_topic=$(wc -l <"$T_DIR/dlq.jsonl")
[ "$on_topic" -eq $BAD ] || fail "dead-letter topic holds $on_topic dead letters, expected $BAD"

kill -TERM "$B_PID"
wait "$B_PID" || fail "mock broker exited with $? after SIGTERM"
echo "ok: $N commands applied once through broker faults (mock cluster), tables equal the" \
    "reference, metrics applied=$applied duplicates=$dups dead_lettered=$dead," \
    "$on_topic dead letters on the topic, $((SECONDS - t_start)) s"
