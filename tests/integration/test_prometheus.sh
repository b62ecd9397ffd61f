#!/usr/bin/env bash
# A real Prometheus server (Debian's binary) scrapes a worker's /metrics every
# second while it applies a load, with the shipped rules loaded: the API's
# sum(pgscribe_commands_applied_total) equals the commands PostgreSQL
# recorded, the per-partition lag series and the recording rules' series
# exist, the commit latency histogram has more than one le series, no alert
# fires on the healthy run, `promtool check metrics` finds no problem in a
# scrape, and the scrape's families are the documented ones. Prometheus is
# stopped on any exit.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || fail "prometheus is needed (scripts/deps.sh: prometheus)"
command -v promtool >/dev/null || fail "promtool is needed (scripts/deps.sh: prometheus)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
T_EXTRA_CONF="[http]
listen = 127.0.0.1:$PORT"
T_PARTITIONS=4
pgs_test_init prometheus
N=4000

PROM_PORT=$(free_port)
PROM_DIR=$T_DIR/prometheus
mkdir -p "$PROM_DIR/data"
cat >"$PROM_DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/deploy/prometheus/pgscribe.rules.yml
scrape_configs:
  - job_name: pgscribe
    static_configs:
      - targets: ['127.0.0.1:$PORT']
CONF
promtool check config "$PROM_DIR/prometheus.yml" >/dev/null || fail "promtool check config failed"
prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$PROM_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
stop_prometheus() {
    local rc=$?
    set +e # a failed step here must not skip the cleanup (the worker would be left running)
    kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    [ $rc -eq 0 ] || tail -n 20 "$PROM_DIR/prometheus.log" >&2
    (exit $rc)
    pgs_test_cleanup
    exit $rc
}
trap stop_prometheus EXIT
API=http://127.0.0.1:$PROM_PORT/api/v1
deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "Prometheus not ready within 30 s"
    kill -0 "$PROM_PID" 2>/dev/null || fail "Prometheus exited: $(tail -n 5 "$PROM_DIR/prometheus.log")"
    sleep 0.3
done

# query EXPR: prints the API's answer (JSON) for an instant query
query() { curl -sf --max-time 5 --data-urlencode "query=$1" "$API/query"; }
# scalar EXPR: the single value of EXPR, or "none" when it has no series
scalar() {
    query "$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "none" if not r else "many")'
}
# count EXPR: how many series EXPR has
count() { query "$1" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))'; }

pgs_worker_start a
A=$W_PID
deadline=$((SECONDS + 30))
until [ "$(scalar 'up{job="pgscribe"}')" = 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "Prometheus has not scraped the worker within 30 s"
    sleep 0.5
done
"$PGSCRIBE_BIN" produce -c "$T_CONF" --count $N --clinics 5 --seed 11 --no-progress >/dev/null ||
    fail "producer failed"
pgs_wait_applied $N 120
applied_db=$(pgs_scalar "$T_DB" "SELECT count(*) FROM pgscribe.applied_commands")
[ "$applied_db" = $N ] || fail "the database recorded $applied_db commands, not $N"

# the scrape after the last commit: Prometheus' sum equals the database's count
deadline=$((SECONDS + 30))
while :; do
    applied_prom=$(scalar 'sum(pgscribe_commands_applied_total)')
    [ "$applied_prom" = "$applied_db" ] && break
    [ $SECONDS -lt $deadline ] ||
        fail "sum(pgscribe_commands_applied_total) is $applied_prom in Prometheus, the database recorded $applied_db"
    sleep 0.5
done
lag_series=$(count 'pgscribe_consumer_lag_messages{job="pgscribe"}')
[ "$lag_series" -ge 4 ] || fail "$lag_series lag series in Prometheus, not one per partition (4)"
le_series=$(count 'pgscribe_commit_latency_seconds_bucket{job="pgscribe"}')
[ "$le_series" -gt 1 ] || fail "pgscribe_commit_latency_seconds_bucket has $le_series le series"
commits=$(scalar 'sum(pgscribe_commit_latency_seconds_count)')
python3 -c "import sys; sys.exit(0 if float('$commits') > 0 else 1)" ||
    fail "the commit latency histogram counted $commits commits"
dl=$(scalar 'sum(pgscribe_dead_letters_total{stream="commands"})')
[ "$dl" = 0 ] || fail "Prometheus counts $dl dead letters of a clean load"
clinics=$(count 'pgscribe_clinic_rows_written_total{job="pgscribe"}')
[ "$clinics" = 5 ] || fail "$clinics per-clinic rows series, not 5"
bytes=$(scalar 'sum(pgscribe_clinic_written_bytes_total)')
python3 -c "import sys; sys.exit(0 if float('$bytes') > $N else 1)" ||
    fail "per-clinic bytes written sum to $bytes for $N commands"

# the shipped rules run against the real series: each recording rule the
# dashboard reads has a series, and nothing alerts on a healthy run
for rec in pgscribe:commands_applied:rate5m pgscribe:consumer_lag_messages:sum \
    pgscribe:commit_latency_seconds:p99_5m pgscribe:slo_availability_errors:ratio_rate5m \
    pgscribe:slo_latency_errors:ratio_rate1h pgscribe:clinic_db_seconds:rate5m; do
    deadline=$((SECONDS + 20))
    until [ "$(count "$rec")" -ge 1 ]; do
        [ $SECONDS -lt $deadline ] || fail "recording rule $rec has no series"
        sleep 0.5
    done
done
rate=$(scalar 'pgscribe:commands_applied:rate5m')
python3 -c "import sys; sys.exit(0 if float('$rate') > 0 else 1)" ||
    fail "pgscribe:commands_applied:rate5m is $rate after $N commands"
firing=$(query 'ALERTS{alertstate="firing"}' | python3 -c '
import json, sys
print(" ".join(r["metric"]["alertname"] for r in json.load(sys.stdin)["data"]["result"]))')
[ -z "$firing" ] || fail "alerts firing on a healthy run: $firing"

curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$T_DIR/metrics.txt" || fail "no /metrics"
promtool check metrics <"$T_DIR/metrics.txt" >"$T_DIR/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$T_DIR/promtool.out")"
[ ! -s "$T_DIR/promtool.out" ] || fail "promtool check metrics reports: $(cat "$T_DIR/promtool.out")"
# the families of a real scrape are the ones the docs table and the
# dashboard check were checked against
python3 "$REPO/tests/prometheus_check.py" "$REPO" --scrape "$T_DIR/metrics.txt" ||
    fail "the scrape's metric families differ from the renderers' (prom.c, profile.c)"

pgs_worker_stop "$A"
echo "ok: Prometheus scraped applied=$applied_prom (database $applied_db), $lag_series lag series," \
    "$le_series latency buckets, $clinics clinics; recording rules evaluated; no alert; promtool clean"
