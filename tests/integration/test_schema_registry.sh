#!/usr/bin/env bash
# Avro commands framed with the ids of a real schema registry (Apicurio
# Registry, in memory, its Confluent-compatible API): WriteCommand v1 and v2
# registered by `produce --register` under ids that are not the shipped ones
# (three other schemas are registered first), 1 000 commands of each
# version → all applied; one message framed with an id the registry does
# not know → one DECODE_UNKNOWN_SCHEMA dead letter. Then the registry is
# stopped and a fresh worker (nothing cached) consumes 1 000 more commands:
# they wait (nothing applied, nothing dead-lettered, the partition held)
# until the registry is back (its storage on an H2 file, so a stop and start
# keeps the ids); then all are applied and the tables equal the one-by-one
# reference.
. "$(dirname "$0")/lib.sh"
export PGS_REGISTRY_DIR PGS_REGISTRY_STORAGE=file
PGS_REGISTRY_DIR=$(mktemp -d /tmp/pgscribe-registry.XXXXXX)
REG=$REPO/tests/registry/registry.sh
reg_cleanup() {
    local rc=$?
    set +e
    "$REG" stop >/dev/null 2>&1
    [ $rc -ne 0 ] && tail -n 20 "$PGS_REGISTRY_DIR/registry.log" >&2
    rm -rf "$PGS_REGISTRY_DIR"
    pgs_test_cleanup
    (exit $rc)
}
trap reg_cleanup EXIT
t0=$SECONDS
"$REG" start >&2 || fail "the schema registry did not start"
REG_URL=$("$REG" url)
note "registry up after $((SECONDS - t0)) s at $REG_URL"
export T_EXTRA_CONF="[schema_registry]
url = $REG_URL
retry_max_ms = 1000
timeout_ms = 1000"
pgs_test_init schema_registry
trap reg_cleanup EXIT
N=1000

# three schemas that are no WriteCommand take ids first, so the registry's
# WriteCommand ids differ from the shipped ones (1 and 2)
register_fillers() {
    local v out
    for v in 1 2 3; do
        out=$(python3 -c 'import json,sys; print(json.dumps({"schema": open(sys.argv[1]).read()}))' \
            "$REPO/schemas/avro/WorkerMetrics.v$v.avsc" |
            curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
                --data-binary @- "$REG_URL/subjects/filler-value/versions") ||
            fail "registering filler schema $v failed"
        echo "$out"
    done
}
register_fillers >"$T_DIR/fillers.txt"

# one deterministic load, cut in three: v1, v2, and the outage's share
"$PGSCRIBE_BIN" produce -c "$T_CONF" -t "$T_RUN.scratch" --count $((3 * N)) --clinics 10 \
    --seed 5 --encoding json --emit "$T_DIR/all.jsonl" --no-progress 2>/dev/null
split -l $N -d "$T_DIR/all.jsonl" "$T_DIR/part."
produce_part() { # PART SCHEMA_ID
    "$PGSCRIBE_BIN" produce -c "$T_CONF" --input "$T_DIR/part.$1" --encoding avro --register \
        --schema-id "$2" --emit "$T_DIR/sent.$1" --no-progress 2>"$T_DIR/produce.$1.err" ||
        fail "produce part $1: $(cat "$T_DIR/produce.$1.err")"
}
produce_part 00 1
produce_part 01 2
id_v1=$(sed -n 's/.*shipped schema id 1 registered as .* id \([0-9]*\)$/\1/p' "$T_DIR/produce.00.err")
id_v2=$(sed -n 's/.*shipped schema id 2 registered as .* id \([0-9]*\)$/\1/p' "$T_DIR/produce.00.err")
[ -n "$id_v1" ] && [ -n "$id_v2" ] && [ "$id_v1" != 1 ] && [ "$id_v2" != 2 ] && [ "$id_v1" != "$id_v2" ] ||
    fail "registry ids of WriteCommand v1/v2 are '$id_v1'/'$id_v2', expected two ids other than 1, 2"
grep -q "registered as .* id $id_v2\$" "$T_DIR/produce.01.err" ||
    fail "registering v2 again gave another id: $(cat "$T_DIR/produce.01.err")"
note "WriteCommand v1 = registry id $id_v1, v2 = registry id $id_v2"

# a message framed with an id the registry has never given out
mkdir "$T_DIR/raw"
printf '\x00\x00\x00\x03\xe7\x02\x00' >"$T_DIR/raw/unknown-id.avro"
"$PGSCRIBE_BIN" produce -c "$T_CONF" --raw-dir "$T_DIR/raw" --no-progress 2>/dev/null

# the messages dead-lettered, as distinct source positions: the rewind check
# of a starting worker reads a partition again from the last offset the
# database records, so a dead letter at a partition's end is made once more
# by the next worker (the same message, the same position)
dlq_sources() {
    pgs_dlq_count >/dev/null
    python3 -c '
import json, sys
seen = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    seen[(d["source_partition"], d["source_offset"])] = (d["key"], d["code"], d["message"])
for pos, v in sorted(seen.items()):
    print("%d/%d %s %s %s" % (pos[0], pos[1], v[0], v[1], v[2]))' "$T_DIR/dlq.jsonl"
}

pgs_worker_start a
pgs_wait_applied $((2 * N)) 180
deadline=$((SECONDS + 60))
until [ "$(pgs_dlq_count)" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the unknown id was not dead-lettered within 60 s"
    sleep 1
done
pgs_worker_stop "$W_PID"
dlq_sources >"$T_DIR/dlq.sources"
[ "$(wc -l <"$T_DIR/dlq.sources")" -eq 1 ] &&
    grep -q ' unknown-id DECODE_UNKNOWN_SCHEMA schema id 999 is not in the schema registry$' \
        "$T_DIR/dlq.sources" ||
    fail "expected one DECODE_UNKNOWN_SCHEMA dead letter for id 999: $(cat "$T_DIR/dlq.sources")"
note "v1 + v2: $((2 * N)) applied, id 999: one DECODE_UNKNOWN_SCHEMA dead letter"

# the outage: commands framed while the registry is up, consumed while it is
# down by a worker that has cached nothing
produce_part 02 2
"$REG" stop >&2
pgs_worker_start b
sleep 8
applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied" -eq $((2 * N)) ] ||
    fail "$applied commands applied with the registry down, expected $((2 * N)) (none of the new ones)"
dlq_sources >"$T_DIR/dlq.sources.down"
cmp -s "$T_DIR/dlq.sources" "$T_DIR/dlq.sources.down" ||
    fail "dead-lettered while the registry was down: $(cat "$T_DIR/dlq.sources.down")"
grep -q 'messages of uncached schema ids wait' "$T_DIR/worker-b.log" ||
    fail "no log line says messages wait for the registry"
kill -0 "$W_PID" || fail "worker b exited while the registry was down"
note "registry down 8 s: nothing applied, nothing dead-lettered, worker waiting"

t1=$SECONDS
"$REG" start >&2 || fail "the schema registry did not start again"
[ "$("$REG" url)" = "$REG_URL" ] || fail "the registry came back on another URL"
curl -sf "$REG_URL/schemas/ids/$id_v2" >/dev/null || fail "the restarted registry lost id $id_v2"
pgs_wait_applied $((3 * N)) 120
note "registry back: the waiting $N applied $((SECONDS - t1)) s after its restart began"
grep -q 'schema registry answers again' "$T_DIR/worker-b.log" || fail "no log line says the wait ended"
pgs_worker_stop "$W_PID"
dlq_sources >"$T_DIR/dlq.sources.after"
cmp -s "$T_DIR/dlq.sources" "$T_DIR/dlq.sources.after" ||
    fail "dead letters after the outage: $(cat "$T_DIR/dlq.sources.after")"

cat "$T_DIR/sent.00" "$T_DIR/sent.01" "$T_DIR/sent.02" >"$T_DIR/sent.jsonl"
pgs_reference "$T_DIR/sent.jsonl"
pgs_compare_tables || fail "tables differ from the one-by-one reference"
echo "ok: $((3 * N)) commands framed with registry ids $id_v1 and $id_v2 applied, tables equal the reference; unknown id 999 dead-lettered once; $N commands waited out the registry's outage; $((SECONDS - t0)) s in all"
