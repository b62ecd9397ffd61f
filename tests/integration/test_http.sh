#!/usr/bin/env bash
# The HTTP endpoint of a running worker (http.listen), against real Kafka and
# PostgreSQL: /metrics in Prometheus' text format passes `promtool check
# metrics` and its pgscribe_commands_applied_total equals the commands the
# database recorded, with the lag series and the commit latency histogram;
# /livez answers 200; /readyz answers 200, turns 503 within a few seconds of
# PostgreSQL stopping and 200 again after it returns (?verbose says which
# check failed); /status is JSON naming the assignment, pools and lanes.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool is needed (scripts/deps.sh: prometheus)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_EXTRA_CONF="[http]
listen = 127.0.0.1:$PORT"
T_PARTITIONS=4
pgs_test_init http
pgs_pg_guard
N=3000
URL=http://127.0.0.1:$PORT

pgs_worker_start a
A=$W_PID
grep -q "listening on 127.0.0.1:$PORT" "$T_DIR/worker-a.log" || fail "no 'listening on' line"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 5 --seed 3 --no-progress >/dev/null ||
    fail "producer failed"
pgs_wait_applied $N 120

code() { curl -s -o "$T_DIR/body" -w '%{http_code}' --max-time 5 "$URL$1" || true; }

[ "$(code /metrics)" = 200 ] || fail "/metrics did not answer 200"
cp "$T_DIR/body" "$T_DIR/metrics.txt"
promtool check metrics <"$T_DIR/metrics.txt" >"$T_DIR/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$T_DIR/promtool.out")"
applied_db=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
applied_prom=$(awk '$1 == "pgscribe_commands_applied_total" { print $2 }' "$T_DIR/metrics.txt")
[ "$applied_prom" = "$applied_db" ] ||
    fail "pgscribe_commands_applied_total is $applied_prom, the database recorded $applied_db"
grep -q '^pgscribe_consumer_lag_messages{group="[^"]*",topic="[^"]*",partition="[0-9]*"} [0-9]*$' \
    "$T_DIR/metrics.txt" || fail "no per-partition lag series"
grep -q '^pgscribe_commit_latency_seconds_bucket{le="+Inf"} [1-9]' "$T_DIR/metrics.txt" ||
    fail "no commit latency histogram"
grep -q '^pgscribe_clinic_commands_applied_total{clinic="' "$T_DIR/metrics.txt" ||
    fail "no per-clinic series"
buckets=$(grep -c '^pgscribe_commit_latency_seconds_bucket' "$T_DIR/metrics.txt")
[ "$buckets" -ge 10 ] || fail "only $buckets histogram buckets"

[ "$(code /livez)" = 200 ] || fail "/livez did not answer 200"
[ "$(code /readyz)" = 200 ] || fail "/readyz did not answer 200 while healthy: $(cat "$T_DIR/body")"
[ "$(code /status)" = 200 ] || fail "/status did not answer 200"
python3 - "$T_DIR/body" <<'PY' || fail "/status: $(head -c 400 "$T_DIR/body")"
import json, sys
s = json.load(open(sys.argv[1]))
cmds = [x for x in s["streams"] if x["name"] == "commands"][0]
assert len(cmds["partitions"]) == 4, cmds["partitions"]
assert cmds["pool"]["connected"] >= 1 and cmds["pool"]["breaker"] == "closed", cmds["pool"]
assert "queued" in cmds["lanes"] and isinstance(s["last_errors"], list)
PY

# PostgreSQL stops: /readyz says so within a few seconds, /livez does not
pgs_pg stop
t0=$(pgs_clock_now_ms)
while [ "$(code /readyz)" = 200 ]; do
    [ $(($(pgs_clock_now_ms) - t0)) -lt 30000 ] || fail "/readyz still 200 30 s after PostgreSQL stopped"
    sleep 0.2
done
down_ms=$(($(pgs_clock_now_ms) - t0))
[ "$(code '/readyz?verbose')" = 503 ] || fail "/readyz?verbose is not 503 while the database is down"
grep -q '^\[-\]' "$T_DIR/body" || fail "/readyz?verbose names no failed check: $(cat "$T_DIR/body")"
[ "$(code /livez)" = 200 ] || fail "/livez is not 200 while the database is down"
pgs_pg start
t0=$(pgs_clock_now_ms)
until [ "$(code /readyz)" = 200 ]; do
    [ $(($(pgs_clock_now_ms) - t0)) -lt 60000 ] || fail "/readyz not 200 60 s after PostgreSQL returned"
    sleep 0.2
done
up_ms=$(($(pgs_clock_now_ms) - t0))
kill -0 "$A" 2>/dev/null || fail "worker died"
pgs_worker_stop "$A"
echo "ok: /metrics passes promtool with applied_total=$applied_prom; /readyz 503 after ${down_ms} ms" \
    "without PostgreSQL and 200 again ${up_ms} ms after it returned; /livez 200 throughout"
