#!/usr/bin/env bash
# Checks the deployment files against the code: deploy/systemd/pgscribe.service
# passes `systemd-analyze verify` (ExecStart pointed at the built binary, which
# verify requires to exist) and holds Type=notify, the watchdog, the reload and
# the hardening; deploy/k8s parses as YAML, its probes ask /livez and /readyz on
# the port the ConfigMap's http.listen binds on 0.0.0.0, that pgscribe.conf
# passes `pgscribe check-config`, the grace period covers the drain, and the
# KEDA ScaledObject scales on the group's lag up to the partition count.
# usage: tests/deploy_check.sh PGSCRIBE_BIN
set -euo pipefail
BIN=$(readlink -f "${1:?usage: $0 PGSCRIBE_BIN}")
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
complain() { echo "deploy: $*" >&2; bad=$((bad + 1)); }

unit=deploy/systemd/pgscribe.service
for want in '^Type=notify$' '^WatchdogSec=30$' '^ExecReload=/bin/kill -HUP \$MAINPID$' \
    '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^PrivateTmp=yes$' \
    '^RestrictAddressFamilies=' '^User=pgscribe$' '^EnvironmentFile=/etc/pgscribe/pgscribe.env$'; do
    grep -Eq "$want" "$unit" || complain "$unit lacks $want"
done
[ -f deploy/systemd/pgscribe.env ] || complain "no sample EnvironmentFile deploy/systemd/pgscribe.env"
if command -v systemd-analyze >/dev/null; then
    sed "s|^ExecStart=/usr/local/bin/pgscribe |ExecStart=$BIN |" "$unit" >"$tmp/pgscribe.service"
    if ! systemd-analyze verify "$tmp/pgscribe.service" >"$tmp/verify.out" 2>&1 ||
        [ -s "$tmp/verify.out" ]; then
        complain "systemd-analyze verify $unit: $(cat "$tmp/verify.out")"
    fi
else
    complain "systemd-analyze missing (scripts/deps.sh installs systemd)"
fi

python3 - "$tmp" deploy/k8s <<'PY' || bad=$((bad + 1))
import glob, os, re, sys, yaml
tmp, d = sys.argv[1], sys.argv[2]
docs = {}
for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
    for doc in yaml.safe_load_all(open(f)):
        if doc:
            docs.setdefault(doc["kind"], []).append(doc)
for kind in ("Deployment", "ConfigMap", "PodDisruptionBudget", "ScaledObject", "Secret"):
    assert kind in docs, "deploy/k8s has no %s" % kind
conf = docs["ConfigMap"][0]["data"]["pgscribe.conf"]
open(os.path.join(tmp, "pgscribe.conf"), "w").write(conf)
m = re.search(r"^\s*listen\s*=\s*(\S+):(\d+)\s*$", conf, re.M)
assert m, "ConfigMap pgscribe.conf sets no http.listen"
assert m.group(1) == "0.0.0.0", "http.listen binds %s, probes need 0.0.0.0" % m.group(1)
port = int(m.group(2))
drain = re.search(r"^\s*drain_timeout_ms\s*=\s*(\d+)", conf, re.M)
drain_s = int(drain.group(1)) / 1000 if drain else 30
pod = docs["Deployment"][0]["spec"]["template"]["spec"]
c = pod["containers"][0]
for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
    g = c[probe]["httpGet"]
    assert g["path"] == path, "%s asks %s" % (probe, g["path"])
    assert g["port"] == port, "%s on port %s, http.listen on %d" % (probe, g["port"], port)
assert any(p["containerPort"] == port for p in c["ports"]), "container port is not %d" % port
assert pod["terminationGracePeriodSeconds"] >= drain_s + 10, "grace period shorter than the drain"
env = {e["name"]: e for e in c["env"]}
assert "secretKeyRef" in env["PGSCRIBE_PG_CONNINFO"]["valueFrom"], "conninfo not from a Secret"
so = docs["ScaledObject"][0]["spec"]
trig = so["triggers"][0]
assert trig["type"] == "kafka" and trig["metadata"]["lagThreshold"] == "5000", trig
assert trig["metadata"]["consumerGroup"] in conf, "KEDA watches another consumer group"
assert so["maxReplicaCount"] == 12, "maxReplicaCount is not the partition count 12"
PY
[ -f "$tmp/pgscribe.conf" ] && ! "$BIN" check-config -c "$tmp/pgscribe.conf" >"$tmp/check.out" 2>&1 &&
    complain "the ConfigMap's pgscribe.conf fails check-config: $(cat "$tmp/check.out")"
grep -q '^USER ' deploy/container/Containerfile || complain "Containerfile runs as root"
grep -q '^EXPOSE 9464' deploy/container/Containerfile || complain "Containerfile exposes no http port"

((bad == 0)) && echo "deploy: unit verified, k8s manifests consistent with the config"
exit $((bad > 0))
