#!/usr/bin/env bash
# The Prometheus and Grafana files under deploy/: `promtool check rules` and
# `promtool check config` pass, `promtool test rules` replays the outage and
# dead-letter scenarios of deploy/prometheus/tests/ with the alerts expected
# at each minute, and tests/prometheus_check.py checks the dashboard's and
# rules' series against /metrics, the runbooks against the alerts and the
# docs' Metrics table against the endpoint; promtool parses every dashboard
# query.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
command -v promtool >/dev/null || { echo "promtool is needed (scripts/deps.sh: prometheus)" >&2; exit 1; }
cd "$REPO/deploy/prometheus"
promtool check rules pgscribe.rules.yml
promtool check config prometheus.yml
# one run per file: a failure names its scenario
for t in tests/*.yml; do
    promtool test rules "$t"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$REPO/tests/prometheus_check.py" "$REPO" --dashboard-rules "$tmp/dashboard.rules.yml"
# every dashboard query is valid PromQL
promtool check rules "$tmp/dashboard.rules.yml"
