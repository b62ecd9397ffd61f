#!/usr/bin/env bash
# Traces on a real broker and database: commands carrying a W3C traceparent
# header (6 sampled, 4 unsampled, 1 invalid, 3 without one, a sampled poison
# command that violates a CHECK, and a sampled re-delivery of the first) are
# applied or dead-lettered; every message of the traces topic decodes with
# protobuf's JSON mapping into an OTLP ExportTraceServiceRequest, and
# traces_check.py asserts one process span per sampled command (its trace id
# and parent span id the header's), transaction spans under it, the poison's
# failed transaction and send spans, the re-delivery's outcome duplicate, no
# span for the others, and no PHI marker value anywhere. The same batches
# reach an OTLP/HTTP endpoint (a stand-in) as application/json POSTs.
. "$(dirname "$0")/lib.sh"
T_PARTITIONS=3
# the worker runs as the ASan + UBSan build: a memory error, undefined
# behaviour or leak on the tracing path fails the test
export PGSCRIBE_WORKER_BIN=${PGSCRIBE_ASAN_BIN:-$PGSCRIBE_BIN}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
pgs_test_init traces
PY=/usr/bin/python3 # Debian's: python3-confluent-kafka and python3-protobuf
# an OTLP/HTTP endpoint stand-in, which every batch is POSTed to as well
"$PY" "$REPO/tests/integration/traces_check.py" receive "$T_DIR/otlp.port" "$T_DIR/otlp.jsonl" &
T_PIDS+=("$!")
for _ in $(seq 50); do [ -s "$T_DIR/otlp.port" ] && break; sleep 0.1; done
[ -s "$T_DIR/otlp.port" ] || fail "the OTLP/HTTP stand-in did not start"
cat >>"$T_CONF" <<CONF
[worker]
id = traces-worker
[trace]
flush_ms = 200
batch_spans = 4
otlp_endpoint = http://127.0.0.1:$(cat "$T_DIR/otlp.port")/v1/traces
CONF
pgs_psql "$T_DB" -c "ALTER TABLE clinic.prescriptions
    ADD CONSTRAINT quantity_limit CHECK (quantity <= 1000)" >/dev/null
command -v protoc >/dev/null || fail "protoc is needed (protobuf-compiler, scripts/deps.sh)"
mkdir -p "$T_DIR/pb"
(cd "$REPO/tests/integration/otlp" &&
    protoc -I . --python_out="$T_DIR/pb" $(find opentelemetry -name '*.proto')) ||
    fail "protoc could not compile the OTLP protos"

"$PY" "$REPO/tests/integration/traces_check.py" produce "$PGSCRIBE_KAFKA" "$T_RUN.commands" \
    "$T_DIR/plan.json" || fail "producing the traced commands failed"
pgs_worker_start a
pgs_wait_applied 14 120
deadline=$((SECONDS + 120))
until [ "$(pgs_dlq_count)" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "the poison command was not dead-lettered within 120 s"
    sleep 1
done
until grep -q "interval: .* duplicates=1 " "$T_DIR/worker-a.log"; do
    [ $SECONDS -lt $deadline ] || fail "the re-delivered command was not found a duplicate"
    sleep 0.5
done
pgs_worker_stop "$W_PID" # its last spans are flushed on the way out
pgs_forget_pid "$W_PID"

applied=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied" -eq 14 ] || fail "$applied applied, expected 14"
grep -q "PHI-MARKER" "$T_DIR/worker-a.log" && fail "a PHI marker value is in the worker log"
"$PY" "$REPO/tests/integration/traces_check.py" check "$PGSCRIBE_KAFKA" "$T_RUN.traces" \
    "$T_DIR/plan.json" "$T_DIR/pb" "$T_DIR/otlp.jsonl" || fail "the exported spans are not as expected"
echo "ok: sampled commands traced as OTLP/JSON, unsampled and header-less ones not, no PHI"
