#!/usr/bin/env bash
# Workers join and leave one group while 60 000 commands arrive at 5 000/s:
# a and b at the start, c joins at ~1 s, b leaves (SIGTERM) at ~2.5 s, d joins
# at ~3.5 s, a leaves at ~5 s once d holds partitions (the load lasts ~12 s:
# a starting worker needs seconds on a busy machine, and a leaver's drain of
# thousands of queued commands pushes the later events back) → every leaver drains its
# revoked partitions and exits 0; every command is applied once and the tables equal the one-by-one
# reference (per-key order held: versions and expected_version checks would
# diverge otherwise); metrics applied sums to 60 000; nothing dead-lettered.
. "$(dirname "$0")/lib.sh"
# members learn of a rebalance at their next heartbeat (every 3 s by default,
# as long as the gaps between the events): at 1 s a join completes sooner
T_EXTRA_KAFKA_CONF=$'[kafka.consumer]\nheartbeat.interval.ms = 1000'
pgs_test_init rebalance
N=60000
RATE=5000

pgs_worker_start a
A=$W_PID
pgs_worker_start b
B=$W_PID

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 41 --rate $RATE \
    --emit "$T_DIR/commands.jsonl" --no-progress &
P=$!
T_PIDS+=("$P")
start=$(pgs_clock_now_ms)

# at MS WHAT: waits until MS ms after the producer started, checks that
# load is left, and prints what happens.
at() {
    local due=$(($1 + start)) now
    now=$(pgs_clock_now_ms)
    [ "$now" -ge "$due" ] || pgs_sleep_ms $((due - now))
    local got
    got=$(pgs_applied_now)
    [ "$got" -lt $N ] || fail "the load was over before: $2"
    note "t+$(($(pgs_clock_now_ms) - start)) ms, $got applied: $2"
}

# the stopped worker's log must show every assignment it got before its stop
# revoked and drained (on its stop, or just before when another member's leave
# came first); one handed to it while closing is never consumed from, so it
# is only reported
drained_on_stop() {
    local log=$T_DIR/worker-$1.log
    awk '/stopping:/ { stopping = 1 }
         /assigned [0-9]+ partition/ { if (stopping) late = 1; else held = 1 }
         /revoked [0-9]+ partition/ { held = 0; r = 1 }
         END { exit !(r && !held) }' "$log" ||
        fail "worker $1 stopped without a revoke/drain of its last assignment"
    if awk '/stopping:/ { s = 1 } s && /assigned [0-9]+ partition/ { f = 1 }
                s && /revoked [0-9]+ partition/ { f = 0 } END { exit !f }' "$log"; then
        note "worker $1 was assigned partitions after its stop began, and logged no revoke of them:" \
            "$(grep -o 'stopping: [^"]*\|assigned [0-9]* partition[^"]*' "$log" | tail -n 2 | tr '\n' ' ')"
    fi
    grep -o 'revoked [0-9]* partition[^"]*' "$log" | tail -n 1
}

# c's join is not waited for (the events keep to the load's clock); d's is,
# so that a's partitions can move to it
at 1000 "start c"
pgs_worker_launch c
C=$W_PID
at 2500 "stop b"
t0=$(pgs_clock_now_ms)
pgs_worker_stop "$B"
drain=$(drained_on_stop b)
note "b left in $(($(pgs_clock_now_ms) - t0)) ms: $drain"
at 3500 "start d"
pgs_worker_launch d
D=$W_PID
pgs_worker_wait_assigned d "$D"
at 5000 "stop a"
t0=$(pgs_clock_now_ms)
pgs_worker_stop "$A"
drain=$(drained_on_stop a)
note "a left in $(($(pgs_clock_now_ms) - t0)) ms: $drain"

wait "$P" || fail "producer failed"
pgs_worker_wait_assigned c "$C"
pgs_wait_applied $N 300
note "all $N applied $(($(pgs_clock_now_ms) - start)) ms after the load started"
pgs_worker_stop "$C"
drained_on_stop c >/dev/null
pgs_worker_stop "$D"
drained_on_stop d >/dev/null

distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT command_id) FROM pgscribe.applied_commands")
[ "$distinct" -eq $N ] || fail "distinct command ids $distinct != $N"
audits=$(pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'write'")
[ "$audits" -eq $N ] || fail "write audit rows $audits != $N"
dlq=$(pgs_dlq_count)
[ "$dlq" -eq 0 ] || fail "$dlq dead letters on the DLQ topic: $(head -n 3 "$T_DIR/dlq.jsonl")"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"

applied=$(pgs_metrics_sum applied)
dups=$(pgs_metrics_sum duplicates)
dead=$(pgs_metrics_sum dead_lettered)
[ "$dead" -eq 0 ] || fail "metrics: $dead dead letters"
[ "$applied" -eq $N ] || fail "metrics: applied sums to $applied, expected $N (duplicates $dups)"
for w in a b c d; do
    log=$T_DIR/worker-$w.log
    note "worker $w: $(grep -c 'assigned [0-9]* partition' "$log") assignment(s), $(grep -o 'stopped: [^"]*' "$log")"
    # each joiner must have taken part in the load, or no handover was tested
    grep -q 'stopped: consumed=[1-9]' "$log" || fail "worker $w consumed nothing: it joined after the load"
done
echo "ok: $N applied once across 2 joins and 2 leaves of a 4-worker group, metrics applied=$applied duplicates=$dups dead_lettered=0"
