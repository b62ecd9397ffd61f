#!/usr/bin/env bash
# Schema changes without downtime (docs/migrations.md), on the real stack:
# 1. producers of the next version run ahead of the expand migration: their
#    commands name a column that does not exist yet; they wait in their lanes
#    (catalog.unknown_column_grace_ms) while the other keys go on, a rolling
#    restart of both workers happens meanwhile, the column is added, and they
#    apply — no dead letter, no SIGHUP, the tables equal the sequential
#    reference;
# 2. the periodic refresh (catalog.refresh_ms) picks up a column added with no
#    command waiting for it, with no SIGHUP;
# 3. a column that never comes is dead-lettered once the grace is over.
. "$(dirname "$0")/lib.sh"
T_EXTRA_CONF=$'[catalog]\nrefresh_ms = 0\nunknown_column_grace_ms = 90000'
pgs_test_init schema_change
HERE=$(dirname "$0")

pgs_worker_start a
pid_a=$W_PID
pgs_worker_start b
pid_b=$W_PID

old=6000
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $old --rate 400 --clinics 5 --seed 71 \
    --emit "$T_DIR/old.jsonl" --no-progress 2>/dev/null &
prod=$!
T_PIDS+=("$prod")
python3 "$HERE/schema_change_commands.py" "$T_DIR/new.jsonl" --count 300 --seed 5
new=600
sleep 2
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/new.jsonl" --no-progress 2>/dev/null ||
    fail "producing the new version's commands failed"

# --- 1. the new version's commands wait for the column
deadline=$((SECONDS + 20))
until grep -q "names a column the catalog does not know" "$T_DIR"/worker-*.log; do
    [ $SECONDS -lt $deadline ] || fail "no command waited for the catalog"
    sleep 0.2
done
base=$(pgs_applied_now)
sleep 3
now=$(pgs_applied_now)
note "while the new version's commands waited: $base -> $now applied"
[ "$now" -gt "$base" ] || fail "other keys stalled while commands waited for the catalog"
# a rolling restart while commands wait: a goes, a2 comes; the migration; b goes, b2 comes
pgs_worker_stop "$pid_a"
pgs_forget_pid "$pid_a"
pgs_worker_start a2
pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions ADD COLUMN pharmacy_note text" >/dev/null
pgs_worker_stop "$pid_b"
pgs_forget_pid "$pid_b"
pgs_worker_start b2

wait "$prod" || fail "the old version's producer failed"
pgs_wait_applied $((old + new)) 240
grep -q "goes on: the refreshed catalog knows its columns" "$T_DIR"/worker-*.log ||
    fail "no waiting command went on with a refreshed catalog"
if grep -q "SIGHUP" "$T_DIR"/worker-*.log; then
    fail "a SIGHUP was involved"
fi
dl=$(pgs_dlq_count)
[ "$dl" -eq 0 ] || fail "$dl dead letters during the migration: $(head -c 400 "$T_DIR/dlq.jsonl")"
notes=$(pgs_scalar "$T_DB" "SELECT count(*) FROM clinic.prescriptions WHERE pharmacy_note LIKE 'updated %'")
[ "$notes" -eq 300 ] || fail "$notes rows carry their UPDATE's note, expected 300 (key order kept)"

pgs_psql "$T_REF_DB" -c "ALTER TABLE clinic.prescriptions ADD COLUMN pharmacy_note text" >/dev/null
cat "$T_DIR/old.jsonl" "$T_DIR/new.jsonl" >"$T_DIR/all.jsonl"
python3 "$HERE/reference.py" --column prescriptions.pharmacy_note:text "$T_DIR/all.jsonl" |
    pgs_psql "$T_REF_DB" -v ON_ERROR_STOP=0 >/dev/null 2>"$T_DIR/reference.err" || true
pgs_compare_tables || fail "tables differ from the sequential reference"

# --- 2. the periodic refresh, no command waiting and no SIGHUP
kill -TERM $(pgrep -f "run -c $T_CONF") 2>/dev/null || true
for p in $(pgrep -f "run -c $T_CONF" || true); do
    while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
done
T_CONF_C=$T_DIR/c.conf
sed -e 's/^refresh_ms = 0$/refresh_ms = 500/' \
    -e 's/^unknown_column_grace_ms = 90000$/unknown_column_grace_ms = 2000/' "$T_CONF" >"$T_CONF_C"
grep -q '^refresh_ms = 500$' "$T_CONF_C" || fail "could not write the second config"
T_CONF_SAVED=$T_CONF
T_CONF=$T_CONF_C
pgs_worker_start c
T_CONF=$T_CONF_SAVED
log_c=$T_DIR/worker-c.log
pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions ADD COLUMN courier text" >/dev/null
deadline=$((SECONDS + 10))
until grep -q "the target schema changed: catalog reloaded" "$log_c"; do
    [ $SECONDS -lt $deadline ] || fail "the periodic refresh did not pick up the new column in 10 s"
    sleep 0.2
done
python3 "$HERE/schema_change_commands.py" "$T_DIR/courier.jsonl" --count 25 --seed 6 --column courier
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/courier.jsonl" --no-progress 2>/dev/null ||
    fail "producing the courier commands failed"
pgs_wait_applied $((old + new + 50)) 60
if grep -q "names a column the catalog does not know" "$log_c"; then
    fail "a command waited although the periodic refresh knew its column"
fi

# --- 3. a column that never comes: dead-lettered after the grace
python3 "$HERE/schema_change_commands.py" "$T_DIR/never.jsonl" --count 1 --seed 7 --column never_added
t0=$(pgs_clock_now_ms)
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/never.jsonl" --no-progress 2>/dev/null ||
    fail "producing the never-added command failed"
deadline=$((SECONDS + 30))
until [ "$(pgs_dlq_count)" -ge 2 ]; do
    [ $SECONDS -lt $deadline ] || fail "the command naming a column that never came was not dead-lettered"
    sleep 0.5
done
waited=$(($(pgs_clock_now_ms) - t0))
[ "$waited" -ge 2000 ] || fail "dead-lettered after $waited ms, before the 2000 ms grace"
grep -c VALIDATE_UNKNOWN_COLUMN "$T_DIR/dlq.jsonl" | grep -qx 2 ||
    fail "dead letters do not both say VALIDATE_UNKNOWN_COLUMN: $(cat "$T_DIR/dlq.jsonl")"
pgs_worker_stop "$(pgrep -f "run -c $T_CONF_C")"
echo "ok: $new commands ahead of their column waited through a rolling restart and applied once the column came; the periodic refresh picked up a column with no SIGHUP; a column that never came was dead-lettered after ${waited} ms"
