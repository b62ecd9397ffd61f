#!/usr/bin/env bash
# Bulkhead: audit events have their own connection pool and lanes, so 2 000
# of them are all stored while a flood of 60 000 commands, queued before them,
# is still being applied (they do not wait behind it). Then every command is
# applied (tables equal the one-by-one reference), every event is stored with
# its fields, and the same events produced again are stored at most once.
. "$(dirname "$0")/lib.sh"
# a narrow command pool, so the flood lasts; two connections for audit events
export T_EXTRA_CONF=$'[apply]\nmax_in_flight = 8\n[audit]\nmax_in_flight = 2'
pgs_test_init bulkhead
N=60000
A=2000
TAIL=200

audit_count() { pgs_scalar "$T_DB" "SELECT count(*) FROM audit.events WHERE kind = 'event'"; }

# Stored events as JSON lines in the producer's shape, sorted, for comparison
# with what `produce --emit` wrote.
stored_events_jsonl() {
    pgs_scalar "$T_DB" "SELECT json_build_object('event_id', event_id::text,
        'clinic_id', clinic_id, 'actor', actor, 'action', action,
        'resource_type', entity, 'resource_id', row_key, 'outcome', outcome,
        'occurred_at', (extract(epoch FROM occurred_at) * 1000)::bigint,
        'source', source, 'details', details::jsonb) FROM audit.events WHERE kind = 'event'"
}
same_events() { # EMITTED_JSONL STORED_JSONL: 0 if both hold the same events
    python3 -c '
import json, sys
def load(p):
    return sorted(json.dumps(json.loads(l), sort_keys=True) for l in open(p) if l.strip())
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    print("emitted %d, stored %d, %d differ" % (len(a), len(b), len(set(a) ^ set(b))))
    sys.exit(1)' "$1" "$2"
}

"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 20 --seed 7 \
    --emit "$T_DIR/commands.jsonl" --no-progress
pgs_worker_start a
since=$(pgs_clock_now_ms)
ms=$(pgs_wait_growth "$since" 0 120)
note "worker applying after ${ms} ms"

# The events go in behind 60 000 queued commands; each poll reads the events
# first, so `applied` is no earlier than the moment they were all stored.
t0=$(pgs_clock_now_ms)
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count $A --clinics 20 --seed 3 \
    --emit "$T_DIR/audit.jsonl" --no-progress &
prod_pid=$!
T_PIDS+=("$prod_pid")
deadline=$((SECONDS + 120))
while :; do
    stored=$(audit_count)
    applied=$(pgs_applied_now)
    [ "$stored" -ge $A ] && break
    [ $SECONDS -lt $deadline ] || fail "only $stored of $A audit events stored within 120 s (applied commands: $applied)"
    sleep 0.05
done
took=$(($(pgs_clock_now_ms) - t0))
rc=0
wait "$prod_pid" || rc=$?
pgs_forget_pid "$prod_pid"
[ $rc -eq 0 ] || fail "produce --audit exited with $rc"
note "all $stored audit events stored ${took} ms after their produce started; applied commands then: $applied of $N"
[ "$stored" -eq $A ] || fail "the audit trail holds $stored rows, expected $A"
[ "$applied" -lt $N ] ||
    fail "the flood was already applied ($applied) when the audit events were stored: the test shows no bulkhead"

pgs_wait_applied $N 600
note "all $N commands applied $(($(pgs_clock_now_ms) - t0)) ms after the audit produce started"
pgs_worker_stop "$W_PID"
pgs_forget_pid "$W_PID"

distinct=$(pgs_scalar "$T_DB" "SELECT count(DISTINCT event_id) FROM audit.events WHERE kind = 'event'")
[ "$distinct" -eq $A ] || fail "distinct event ids $distinct != $A"
stored_events_jsonl >"$T_DIR/audit_stored.jsonl"
same_events "$T_DIR/audit.jsonl" "$T_DIR/audit_stored.jsonl" ||
    fail "stored audit events differ from the produced ones"
pgs_reference "$T_DIR/commands.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"

# The same events again, then a tail of new ones that covers every clinic:
# a clinic's events are stored in order, so once the tail is stored every
# duplicate ahead of it has been handled.
pgs_worker_start b
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count $A --clinics 20 --seed 3 \
    --emit "$T_DIR/audit_again.jsonl" --no-progress
cmp -s "$T_DIR/audit.jsonl" "$T_DIR/audit_again.jsonl" || fail "the same seed produced other events"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --audit --count $TAIL --clinics 20 --seed 4 \
    --emit "$T_DIR/audit_tail.jsonl" --no-progress
tail_clinics=$(python3 -c '
import json, sys
print(len({json.loads(l)["clinic_id"] for l in open(sys.argv[1])}))' "$T_DIR/audit_tail.jsonl")
[ "$tail_clinics" -eq 20 ] || fail "the tail covers $tail_clinics of 20 clinics"
deadline=$((SECONDS + 120))
until [ "$(audit_count)" -ge $((A + TAIL)) ]; do
    [ $SECONDS -lt $deadline ] || fail "tail not stored within 120 s: the audit trail holds $(audit_count)"
    sleep 0.2
done
pgs_worker_stop "$W_PID"
pgs_forget_pid "$W_PID"

total=$(audit_count)
[ "$total" -eq $((A + TAIL)) ] || fail "the audit trail holds $total rows, expected $A + $TAIL: duplicates stored"
cat "$T_DIR/audit.jsonl" "$T_DIR/audit_tail.jsonl" >"$T_DIR/audit_all.jsonl"
stored_events_jsonl >"$T_DIR/audit_stored.jsonl"
same_events "$T_DIR/audit_all.jsonl" "$T_DIR/audit_stored.jsonl" ||
    fail "after the re-run, stored audit events differ from the produced ones"
dups=$(grep -o 'audit_events stored=[0-9]* duplicates=[0-9]*' "$T_DIR/worker-b.log" |
    awk -F'duplicates=' '{s += $2} END {print s + 0}')
echo "ok: $A audit events stored in ${took} ms while $applied of $N commands were applied;" \
    "all $N applied and equal to the reference; the $A events produced again were stored" \
    "at most once ($total rows with $TAIL new; worker b logged $dups duplicates)"
