#!/usr/bin/env bash
# SIGHUP's catalog reload does not stall the worker: while a session holds
# pg_authid exclusively (a new connection cannot log in, the catalog's role
# query cannot read pg_roles) for 6 s, the reload waits on its own connection
# and the worker keeps committing under a steady load; the new catalog comes
# once the lock is gone, and every command is applied exactly once.
. "$(dirname "$0")/lib.sh"
# the reload's connection waits out the lock rather than timing out
T_EXTRA_CONF=$'[pg]\nconnect_timeout_ms = 30000'
pgs_test_init reload

pgs_worker_start a
log=$T_DIR/worker-a.log
total=9000
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $total --rate 600 --clinics 5 --seed 61 \
    --no-progress 2>/dev/null &
prod=$!
T_PIDS+=("$prod")
sleep 3

pgs_psql "$T_DB" -c "BEGIN; LOCK TABLE pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(6); COMMIT;" >/dev/null &
locker=$!
sleep 1 # the locker has logged in and holds the lock
t0=$(date +%s.%N)
kill -HUP "$W_PID"
sleep 2
# the reload is held by the lock (so this test measures a stalled reload)...
if grep -q "SIGHUP: catalog reloaded" "$log"; then
    fail "the catalog reload was not held by the lock on pg_authid: the test proves nothing"
fi
kill -0 "$W_PID" || fail "worker died during the reload"
wait "$locker" || fail "the locking session failed"
t1=$(date +%s.%N)
# ...and once the lock is gone, the new catalog comes
deadline=$((SECONDS + 20))
until grep -q "SIGHUP: catalog reloaded, 4 entities" "$log"; do
    [ $SECONDS -lt $deadline ] || fail "no catalog reload after the lock ended: $(grep catalog "$log" | tail -n 3)"
    sleep 0.2
done
grep -q "SIGHUP: configuration reloaded" "$log" || fail "no configuration reload after SIGHUP"
wait "$prod" || fail "producer failed"
pgs_wait_applied $total 180

# commits of transactions begun while the reload was held (the middle of the
# window, 0.5 s off each end): at 600 commands a second, a loop stalled by the
# reload commits none of them
held=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands
    WHERE applied_at > to_timestamp($t0) + interval '0.5 s'
      AND applied_at < to_timestamp($t1) - interval '0.5 s'")
window_ms=$(python3 -c "print(int((float('$t1') - float('$t0') - 1.0) * 1000))")
note "committed while the reload was held: $held in ${window_ms} ms"
[ "$held" -ge $((window_ms * 600 / 1000 / 3)) ] ||
    fail "only $held commands committed during the ${window_ms} ms the reload was held"
[ "$(pgs_dlq_count)" -eq 0 ] || fail "dead letters during the reload"
pgs_worker_stop "$W_PID"
grep -q "stopped: consumed=$total" "$log" || fail "stop summary wrong: $(grep stopped: "$log")"
echo "ok: a catalog reload held ${window_ms} ms by a lock stalled nothing ($held commands committed meanwhile), then took effect; $total applied once, 0 dead letters"
