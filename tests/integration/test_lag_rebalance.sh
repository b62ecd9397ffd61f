#!/usr/bin/env bash
# consumer_lag right after a rebalance: worker a applies 3 000 commands and
# commits; worker b joins, every partition is assigned anew (eager protocol)
# and no new message arrives. Each WorkerMetrics record of an interval that
# starts after the rebalance reports consumer_lag 0: a partition that has
# handed no message yet is measured from its committed offset, not from its
# low watermark (which made it report its whole length).
. "$(dirname "$0")/lib.sh"
T_EXTRA_KAFKA_CONF=$'[kafka.consumer]\nheartbeat.interval.ms = 1000'
pgs_test_init lag_rebalance
N=3000

pgs_worker_start a
A=$W_PID
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 5 --seed 17 --no-progress \
    >"$T_DIR/produce.log" 2>&1 || fail "producing failed"
pgs_wait_applied $N 120
sleep 3 # the stored offsets are committed every second
pgs_worker_launch b
B=$W_PID
pgs_worker_wait_assigned b "$B"
# a is revoked and assigned again in the same rebalance
deadline=$((SECONDS + 60))
until [ "$(grep -c "assigned [0-9]* partition" "$T_DIR/worker-a.log")" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || fail "worker a was not assigned again"
    sleep 0.2
done
after_ms=$(pgs_clock_now_ms)
sleep 5
pgs_worker_stop "$A"
pgs_forget_pid "$A"
pgs_worker_stop "$B"
pgs_forget_pid "$B"
"$PGSCRIBE_BIN" metrics -c "$T_CONF" --timeout-ms 30000 >"$T_DIR/metrics.jsonl" ||
    fail "reading the metrics topic failed"
python3 - "$T_DIR/metrics.jsonl" "$after_ms" <<'PY' || fail "phantom lag after the rebalance"
import json, sys
after = int(sys.argv[2])
seen = {}
bad = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["interval_start"] < after:
        continue
    seen[r["worker_id"]] = seen.get(r["worker_id"], 0) + 1
    if r["consumer_lag"] != 0:
        bad.append((r["worker_id"], r["interval_start"], r["consumer_lag"]))
if len(seen) != 2 or min(seen.values()) < 2:
    sys.exit("too few records after the rebalance: %r" % seen)
if bad:
    sys.exit("consumer_lag after the rebalance: %r" % bad[:6])
print("records after the rebalance: %r, all with consumer_lag 0" % seen)
PY
applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied" -eq $N ] || fail "$applied applied, expected $N"
echo "ok: after a rebalance with no new message every metrics record reports consumer_lag 0"
