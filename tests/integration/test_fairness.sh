#!/usr/bin/env bash
# Fairness: per-clinic rate limits. Five clinics; clinic-001 floods at 20x the
# others' rate (400/s against a limit of 100/s, burst 100), the four others
# send 20/s each, unlimited. The others' commit latency (applied_at, the
# transaction's start, minus the wall time the command was written to the
# producer) is measured unloaded, then under the flood: its p99 stays within
# 2x the unloaded p99, the unloaded p99 counted as at least 100 ms (a floor
# for the noise of a shared 2-core machine: the same run without any limit
# shows the others' p99 moving between phases by 50-150 ms from load alone). Every flooding command is applied (none
# dropped or dead-lettered), at close to its limit, and /metrics shows
# clinic-001's throttled seconds. The flood's backlog stays under the
# over-limit pause threshold here (a tenth of apply.partition_window_max per
# partition), so no partition pauses: what is measured is dispatch alone.
# The consumer's fetch.wait.max.ms is 10 ms, so that a quiet topic's fetch
# wait (500 ms by default) does not swamp the latency measured.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RATE=100
export T_EXTRA_CONF="[limits]
overrides = clinic-001:$RATE:$RATE
[http]
listen = 127.0.0.1:$PORT
[kafka.consumer]
fetch.wait.max.ms = 10"
pgs_test_init fairness
LOG=$T_DIR/issued.csv
OTHERS_RATE=20
SECONDS_LOAD=10
FLOOD_RATE=$((20 * OTHERS_RATE))
FLOOD_SECONDS=5
N_UNLOADED=$((4 * OTHERS_RATE * SECONDS_LOAD))
N_FLOOD=$((FLOOD_RATE * FLOOD_SECONDS))

pgs_worker_start a

# load PHASE ARGS...: the paced generator piped into produce
load() {
    local phase=$1
    shift
    $PY "$REPO/tests/integration/fairness_load.py" --phase "$phase" --log "$LOG" "$@" |
        "$PGSCRIBE_BIN" produce -c "$T_CONF" --input - --encoding json --no-progress ||
        fail "produce ($phase) failed"
}

# p99 PHASE: p99 commit latency (ms) of the other clinics' commands of PHASE
p99() {
    pgs_scalar "$T_DB" "SELECT command_id, (extract(epoch FROM applied_at) * 1000)::bigint
        FROM pgscribe.applied_commands" | tr '|' ',' >"$T_DIR/applied.csv"
    $PY - "$LOG" "$T_DIR/applied.csv" "$1" <<'PYEOF'
import sys
issued = {}
for line in open(sys.argv[1]):
    cid, clinic, phase, ms = line.strip().split(",")
    if phase == sys.argv[3] and clinic != "clinic-001":
        issued[cid] = int(ms)
lat = sorted(int(l.split(",")[1]) - issued[l.split(",")[0]]
             for l in open(sys.argv[2]) if l.split(",")[0] in issued)
if len(lat) != len(issued):
    sys.exit("only %d of %d commands applied" % (len(lat), len(issued)))
print(lat[min(len(lat) - 1, int(len(lat) * 0.99))])
PYEOF
}

# warm-up, so neither phase pays for the first connections and statements
load warm --others-rate 10 --seconds 1
pgs_wait_applied 40 60

note "unloaded: 4 clinics at $OTHERS_RATE/s for $SECONDS_LOAD s"
load unloaded --others-rate $OTHERS_RATE --seconds $SECONDS_LOAD
pgs_wait_applied $((40 + N_UNLOADED)) 60
p99_unloaded=$(p99 unloaded)
note "unloaded p99 ${p99_unloaded} ms"

note "flood: clinic-001 at $FLOOD_RATE/s for $FLOOD_SECONDS s (limit $RATE/s) beside the 4 others"
t0=$(pgs_clock_now_ms)
load flood --others-rate $OTHERS_RATE --seconds $SECONDS_LOAD \
    --flood-rate $FLOOD_RATE --flood-seconds $FLOOD_SECONDS
others_done=$(pgs_clock_now_ms)
# the others' commands are in within seconds; the flood drains at its limit
total=$((40 + 2 * N_UNLOADED + N_FLOOD))
pgs_wait_applied $total 120
p99_flood=$(p99 flood)
note "p99 under the flood ${p99_flood} ms (others' produce ended $((others_done - t0)) ms after it started)"

floor=$p99_unloaded
[ "$floor" -ge 100 ] || floor=100
[ "$p99_flood" -le $((2 * floor)) ] ||
    fail "the other clinics' p99 rose from ${p99_unloaded} ms to ${p99_flood} ms under the flood (bound $((2 * floor)) ms)"

flood_applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands WHERE clinic_id = 'clinic-001'")
[ "$flood_applied" -eq $N_FLOOD ] || fail "clinic-001: $flood_applied of $N_FLOOD applied"
dlq=$(pgs_topic_count "$T_RUN.commands.dlq")
[ "$dlq" -eq 0 ] || fail "$dlq dead letters"

# its rate once the burst was spent: from its 200th command to its last
rate=$(pgs_scalar "$T_DB" "WITH a AS (SELECT applied_at, row_number() OVER (ORDER BY applied_at) AS n
        FROM pgscribe.applied_commands WHERE clinic_id = 'clinic-001')
    SELECT round((max(n) - 200) / extract(epoch FROM max(applied_at) - min(applied_at) FILTER (WHERE n >= 200)))
    FROM a")
note "clinic-001 applied $flood_applied at ${rate}/s (limit $RATE/s)"
[ "$rate" -ge $((RATE * 8 / 10)) ] && [ "$rate" -le $((RATE * 12 / 10)) ] ||
    fail "clinic-001 applied at ${rate}/s, not near its limit of $RATE/s"

metrics=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics")
throttled=$(echo "$metrics" | sed -n 's/^pgscribe_clinic_throttled_seconds_total{clinic="clinic-001"} //p')
note "clinic-001 throttled ${throttled:-none} s"
$PY -c "import sys; sys.exit(0 if float(sys.argv[1] or 0) > 1 else 1)" "${throttled:-0}" ||
    fail "no throttled time for clinic-001 on /metrics"
echo "$metrics" | grep -q 'pgscribe_clinic_throttled_seconds_total{clinic="clinic-00[2-5]"}' &&
    fail "an unlimited clinic has throttled time"

# SIGHUP: a bad override is refused and the old limit kept; a lower limit
# then takes effect without a restart
sed -i 's/^overrides = .*/overrides = clinic-001:abc/' "$T_CONF"
kill -HUP "$W_PID"
deadline=$((SECONDS + 20))
until grep -q "limits.overrides is invalid, keeping the old limits" "$T_DIR/worker-a.log"; do
    [ $SECONDS -lt $deadline ] || fail "no error for a bad limits.overrides at SIGHUP"
    sleep 0.2
done
SLOW=25
sed -i "s/^overrides = .*/overrides = clinic-001:$SLOW:5/" "$T_CONF"
kill -HUP "$W_PID"
deadline=$((SECONDS + 20))
until [ "$(grep -c "SIGHUP: configuration reloaded" "$T_DIR/worker-a.log")" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || fail "the second SIGHUP was not reloaded"
    sleep 0.2
done
N_SLOW=150
load slow --others-rate 1 --seconds 1 --flood-rate 1000 --flood-seconds 0.15
pgs_wait_applied $((total + 4 + N_SLOW)) 60
rate=$(pgs_scalar "$T_DB" "SELECT round(($N_SLOW - 1) / extract(epoch FROM max(applied_at) - min(applied_at)))
    FROM pgscribe.applied_commands a WHERE clinic_id = 'clinic-001' AND a.command_id IN
    (SELECT command_id FROM pgscribe.applied_commands WHERE clinic_id = 'clinic-001'
     ORDER BY applied_at DESC LIMIT $N_SLOW)")
note "after SIGHUP (limit $SLOW/s): clinic-001 applied $N_SLOW at ${rate}/s"
[ "$rate" -ge $((SLOW * 8 / 10)) ] && [ "$rate" -le $((SLOW * 12 / 10)) ] ||
    fail "after SIGHUP clinic-001 applied at ${rate}/s, not near its new limit of $SLOW/s"

pgs_worker_stop "$W_PID"
pgs_forget_pid "$W_PID"
note "ok"
