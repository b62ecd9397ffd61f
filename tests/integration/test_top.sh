#!/usr/bin/env bash
# The live view and the metrics reader's start points, against real Kafka.
# Two workers publish WorkerMetrics every second under a load: `pgscribe top`
# in a detached tmux session shows a live row for each worker id with an
# applied/s figure above zero, and quits on `q`. With both workers stopped,
# `metrics --latest` prints exactly one record per worker, the newest the
# topic holds for it, and exits 0; `metrics --follow` prints none of the old
# records, only those of a worker started after it; with --from-beginning
# it prints the old ones too.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || fail "tmux is needed (scripts/deps.sh)"
T_PARTITIONS=4
pgs_test_init top
SESSION=pgs-top-$$
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; pgs_test_cleanup' EXIT

worker_id() { # LOG: the worker= field of its lines
    sed -n 's/.* worker=\([^ ]*\) .*/\1/p' "$1" | head -n 1
}
pgs_worker_start a
PID_A=$W_PID
pgs_worker_start b
PID_B=$W_PID
ID_A=$(worker_id "$T_DIR/worker-a.log")
ID_B=$(worker_id "$T_DIR/worker-b.log")
[ -n "$ID_A" ] && [ -n "$ID_B" ] && [ "$ID_A" != "$ID_B" ] || fail "worker ids '$ID_A' '$ID_B'"

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count 30000 --rate 3000 >"$T_DIR/produce.log" 2>&1 &
PRODUCE_PID=$!
T_PIDS+=("$PRODUCE_PID")
sleep 3

note "pgscribe top in tmux"
tmux new-session -d -s "$SESSION" -x 160 -y 50 "$PGSCRIBE_BIN top -c '$T_CONF' --refresh-ms 500"
ok=0
for _ in $(seq 1 40); do
    sleep 0.5
    tmux capture-pane -p -t "$SESSION" >"$T_DIR/top.txt" 2>/dev/null || break
    # WORKER STATE APPLIED/S …: both live, at least one applying
    if grep -qE "^$ID_A +live +[0-9]+\.[0-9] " "$T_DIR/top.txt" &&
        grep -qE "^$ID_B +live +[0-9]+\.[0-9] " "$T_DIR/top.txt" &&
        awk -v a="$ID_A" -v b="$ID_B" '($1 == a || $1 == b) && $3 > 0 {f = 1} END {exit !f}' "$T_DIR/top.txt" &&
        grep -q "^CLINIC " "$T_DIR/top.txt"; then
        ok=1
        break
    fi
done
cat "$T_DIR/top.txt" >&2
[ $ok -eq 1 ] || fail "top did not show both workers live with an applied/s figure"
tmux send-keys -t "$SESSION" q
for _ in $(seq 1 20); do
    tmux has-session -t "$SESSION" 2>/dev/null || break
    sleep 0.25
done
tmux has-session -t "$SESSION" 2>/dev/null && fail "top did not quit on q"

"$PGSCRIBE_BIN" top -c "$T_CONF" --once >"$T_DIR/top-once.txt" || fail "top --once failed"
grep -qE "^$ID_A +live " "$T_DIR/top-once.txt" || fail "top --once has no row of $ID_A"
grep -q $'\033' "$T_DIR/top-once.txt" && fail "top --once wrote terminal escapes"

wait "$PRODUCE_PID" || fail "produce failed"
pgs_wait_applied 30000 120
pgs_worker_stop "$PID_A"
pgs_worker_stop "$PID_B"

note "metrics --latest"
"$PGSCRIBE_BIN" metrics -c "$T_CONF" >"$T_DIR/all.jsonl" || fail "metrics failed"
rc=0
"$PGSCRIBE_BIN" metrics -c "$T_CONF" --latest >"$T_DIR/latest.jsonl" || rc=$?
[ $rc -eq 0 ] || fail "metrics --latest exited $rc"
python3 - "$T_DIR/all.jsonl" "$T_DIR/latest.jsonl" "$ID_A" "$ID_B" <<'PY' || fail "metrics --latest is wrong"
import json, sys
allr = [json.loads(l) for l in open(sys.argv[1])]
latest = [json.loads(l) for l in open(sys.argv[2])]
ids = sorted(r["worker_id"] for r in latest)
assert ids == sorted(sys.argv[3:5]), "one record per worker expected, got %s" % ids
for r in latest:
    newest = max(x["interval_end"] for x in allr if x["worker_id"] == r["worker_id"])
    assert r["interval_end"] == newest, (r["worker_id"], r["interval_end"], newest)
assert len(allr) > len(latest) + 4, "too few records to tell: %d" % len(allr)
PY

note "metrics --follow starts at the end"
OLD=$(wc -l <"$T_DIR/all.jsonl")
"$PGSCRIBE_BIN" metrics -c "$T_CONF" --follow >"$T_DIR/follow.jsonl" 2>"$T_DIR/follow.err" &
FOLLOW_PID=$!
T_PIDS+=("$FOLLOW_PID")
sleep 2
pgs_worker_start c
PID_C=$W_PID
ID_C=$(worker_id "$T_DIR/worker-c.log")
sleep 4
pgs_worker_stop "$PID_C"
sleep 1
kill -TERM "$FOLLOW_PID"
wait "$FOLLOW_PID" || fail "metrics --follow did not exit 0 on SIGTERM"
python3 - "$T_DIR/follow.jsonl" "$ID_C" <<'PY' || fail "metrics --follow printed old records"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert recs, "metrics --follow printed nothing of the new worker"
others = [r["worker_id"] for r in recs if r["worker_id"] != sys.argv[2]]
assert not others, "old records printed: %s" % others
PY
timeout -s INT 5 "$PGSCRIBE_BIN" metrics -c "$T_CONF" --follow --from-beginning \
    >"$T_DIR/fb.jsonl" || true
[ "$(wc -l <"$T_DIR/fb.jsonl")" -gt "$OLD" ] ||
    fail "--follow --from-beginning printed $(wc -l <"$T_DIR/fb.jsonl") records, the topic held $OLD before"
"$PGSCRIBE_BIN" metrics -c "$T_CONF" --latest --follow >/dev/null 2>&1 && fail "--latest --follow accepted"
echo "ok: top showed $ID_A and $ID_B; --latest one record each; --follow only $ID_C's"
