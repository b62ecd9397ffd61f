#!/usr/bin/env bash
# A constraint checked only at COMMIT (a deferred constraint trigger) rejects
# a few commands: the failing transactions' commands are sent again each in a
# transaction of its own, so exactly the bad ones are dead-lettered (with the
# trigger's SQLSTATE) and every good one is applied.
. "$(dirname "$0")/lib.sh"
export T_EXTRA_CONF=$'[apply]\nmulti_row_min = 2'
pgs_test_init deferred

pgs_psql "$T_DB" -c "
CREATE FUNCTION clinic.quantity_limit() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.quantity > 1000 THEN
        RAISE EXCEPTION 'quantity over the limit' USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END \$\$;
CREATE CONSTRAINT TRIGGER quantity_limit AFTER INSERT OR UPDATE ON clinic.prescriptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION clinic.quantity_limit();" >/dev/null

"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.scratch" --count 5000 --clinics 20 --seed 61 \
    --emit "$T_DIR/good.jsonl" --no-progress 2>/dev/null
python3 "$(dirname "$0")/poison_commands.py" "$T_DIR/good.jsonl" "$T_DIR/mixed.jsonl" \
    "$T_DIR/bad_keys.txt" --bad 20 --seed 62
"$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/mixed.jsonl" --no-progress 2>/dev/null
pgs_worker_start a
pgs_wait_applied 5000 300
deadline=$((SECONDS + 120))
until [ "$(pgs_dlq_count)" -ge 20 ]; do
    [ $SECONDS -lt $deadline ] || fail "only $(pgs_dlq_count) of 20 dead letters"
    sleep 1
done
pgs_worker_stop "$W_PID"
grep -q "COMMIT of [0-9]* command(s) failed (SQLSTATE 23514)" "$T_DIR/worker-a.log" ||
    fail "no transaction failed at COMMIT: the test did not exercise the deferred check"

"$PGSCRIBE_BIN" replay -c "$T_CONF" --list >"$T_DIR/dlq.jsonl"
[ "$(wc -l <"$T_DIR/dlq.jsonl")" -eq 20 ] || fail "$(wc -l <"$T_DIR/dlq.jsonl") dead letters, expected 20"
python3 - "$T_DIR/dlq.jsonl" "$T_DIR/bad_keys.txt" <<'PY' || fail "dead letters are not exactly the bad commands"
import json, sys
dl = [json.loads(l) for l in open(sys.argv[1])]
bad = set(l.strip() for l in open(sys.argv[2]) if l.strip())
keys = set(d["key"] for d in dl)
assert keys == bad, (len(keys), len(bad))
assert all(d["class"] == "db-permanent" and d["code"] == "23514" for d in dl)
PY
[ "$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")" -eq 5000 ] ||
    fail "applied_commands is not 5000"
pgs_reference "$T_DIR/good.jsonl"
pgs_compare_tables || fail "tables differ from the reference of the good commands"
echo "ok: 20 commands rejected at COMMIT dead-lettered alone (23514); 5000 good ones applied, equal to the reference"
