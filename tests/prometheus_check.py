#!/usr/bin/env python3
"""Checks the Prometheus and Grafana files under deploy/ against the worker's
/metrics and the docs:

- every PromQL expression of the dashboard and the rules names only series
  the endpoint renders (src/run/prom.c) or a recording rule records;
- every alert has a summary, a description and a runbook_url of
  docs/runbooks/<alert>.md that exists, and every runbook names an alert;
  annotations use only labels that carry no message value;
- the Metrics table of docs/operations.md lists exactly the endpoint's metric
  families, and its Alerts section links every runbook;
- with --scrape FILE (a curl of a running worker's /metrics): the families
  of the scrape are exactly the ones read from prom.c.

With --dashboard-rules FILE it also writes every dashboard expression as a
recording rule to FILE (Grafana's $job as .+), for `promtool check rules` to
parse.

usage: prometheus_check.py REPO [--scrape FILE] [--dashboard-rules FILE]
"""
import json
import os
import re
import sys

import yaml

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}
# labels an annotation may print: none of them carries a message value
SAFE_LABELS = {"job", "instance", "group", "stream", "class", "topic", "partition"}
# series Prometheus itself provides
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}

errors = []


def err(msg):
    errors.append(msg)


def series_of(expr):
    """The series names a PromQL expression selects."""
    names = set()
    for m in re.finditer(r'__name__\s*=~?\s*"([^"]*)"', expr):
        names |= set(m.group(1).split("|"))
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)", e):
        name = m.group(1)
        if name.lower() in KEYWORDS:
            continue
        if re.match(r"\s*\(", e[m.end():]):
            continue  # a function or an aggregation
        if re.fullmatch(r"\d+[smhdwy]|e\d+", name):
            continue
        names.add(name)
    return names


RENDERERS = ("prom.c", "profile.c")


def endpoint_families(repo):
    """Metric families /metrics renders, and every sample name, from its
    renderers: prom.c and the statement profiles' profile.c."""
    src = "".join(open(os.path.join(repo, "src/run", f)).read() for f in RENDERERS)
    literals = set(re.findall(r'"(pgscribe_[a-z0-9_]+)"', src))
    histograms = set(re.findall(r'"(pgscribe_[a-z0-9_]+)",\s*"histogram"', src))
    histograms |= {n for n in literals
                   if n + "_bucket" in literals and n + "_count" in literals}
    families = {n for n in literals
                if not any(n == h + s for h in histograms for s in ("_bucket", "_sum", "_count"))}
    samples = set(families - histograms)
    for h in histograms:
        samples |= {h + "_bucket", h + "_sum", h + "_count"}
    return families, samples


def main():
    repo = sys.argv[1]
    scrape = sys.argv[sys.argv.index("--scrape") + 1] if "--scrape" in sys.argv else None
    families, samples = endpoint_families(repo)
    if len(families) < 10:
        err(f"only {len(families)} metric families found in src/run/prom.c")

    rules = yaml.safe_load(open(os.path.join(repo, "deploy/prometheus/pgscribe.rules.yml")))
    records, alerts, exprs = set(), [], []
    for g in rules["groups"]:
        for r in g["rules"]:
            if "record" in r:
                records.add(r["record"])
            else:
                alerts.append(r)
            exprs.append((f"rule {r.get('record') or r.get('alert')}", str(r["expr"])))
    known = samples | records | PROMETHEUS_SERIES

    dash = json.load(open(os.path.join(repo, "deploy/grafana/pgscribe-dashboard.json")))
    if not 36 <= dash.get("schemaVersion", 0) <= 41:
        err(f"dashboard schemaVersion {dash.get('schemaVersion')}")
    n_dash = 0
    for p in dash["panels"]:
        for t in p.get("targets", []):
            exprs.append((f"panel '{p['title']}'", t["expr"]))
            n_dash += 1
    if "--dashboard-rules" in sys.argv:
        out = sys.argv[sys.argv.index("--dashboard-rules") + 1]
        panel_exprs = [e for w, e in exprs if w.startswith("panel")]
        dash_rules = [{"record": f"dashboard:query{i + 1}", "expr": e.replace("$job", ".+")}
                      for i, e in enumerate(panel_exprs)]
        with open(out, "w") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": dash_rules}]}, f)
    if n_dash < 10:
        err(f"the dashboard has only {n_dash} queries")
    for v in dash["templating"]["list"]:
        q = v.get("definition") or ""
        m = re.match(r"label_values\((\w+),\s*\w+\)", q)
        if v["type"] == "query" and (not m or m.group(1) not in known):
            err(f"dashboard variable {v['name']}: query {q!r} names no known series")
    for where, expr in exprs:
        names = series_of(expr)
        if not names:
            err(f"{where}: no series found in {expr!r}")
        for n in sorted(names - known):
            err(f"{where}: series {n} is neither on /metrics nor recorded by a rule")

    runbook_dir = os.path.join(repo, "docs/runbooks")
    names = sorted({a["alert"] for a in alerts})
    for a in alerts:
        ann = a.get("annotations", {})
        for k in ("summary", "description", "runbook_url"):
            if not ann.get(k):
                err(f"alert {a['alert']}: no {k}")
        if ann.get("runbook_url") != f"docs/runbooks/{a['alert']}.md":
            err(f"alert {a['alert']}: runbook_url {ann.get('runbook_url')!r}")
        for text in ann.values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                if label not in SAFE_LABELS:
                    err(f"alert {a['alert']}: annotation prints label {label}")
        if a.get("labels", {}).get("severity") not in ("page", "ticket"):
            err(f"alert {a['alert']}: severity is not page or ticket")
    for n in names:
        if not os.path.isfile(os.path.join(runbook_dir, n + ".md")):
            err(f"alert {n}: no docs/runbooks/{n}.md")
    for f in sorted(os.listdir(runbook_dir)) if os.path.isdir(runbook_dir) else []:
        if f.endswith(".md") and f[:-3] not in names:
            err(f"docs/runbooks/{f} names no alert of the rules")

    ops = open(os.path.join(repo, "docs/operations.md")).read()
    section = re.search(r"^## Metrics\n(.*?)(?=^## )", ops, re.S | re.M)
    if not section:
        err("docs/operations.md has no '## Metrics' section")
    else:
        documented = set()
        for line in section.group(1).splitlines():
            m = re.match(r"\|\s*`(pgscribe_[a-z0-9_]+)", line)
            if m:
                if m.group(1) in documented:
                    err(f"docs/operations.md: {m.group(1)} is in the Metrics table twice")
                documented.add(m.group(1))
        for n in sorted(families - documented):
            err(f"docs/operations.md: metric {n} is on /metrics but not in the Metrics table")
        for n in sorted(documented - families):
            err(f"docs/operations.md: metric {n} is in the Metrics table but not on /metrics")
    section = re.search(r"^## Alerts\n(.*?)(?=^## |\Z)", ops, re.S | re.M)
    if not section:
        err("docs/operations.md has no '## Alerts' section")
    else:
        for n in names:
            if f"(runbooks/{n}.md)" not in section.group(1):
                err(f"docs/operations.md: the Alerts section does not link runbooks/{n}.md")

    if scrape:
        scraped = set(re.findall(r"^# TYPE (\S+) ", open(scrape).read(), re.M))
        for n in sorted(scraped - families):
            err(f"scrape: family {n} is not in src/run/prom.c's list")
        for n in sorted(families - scraped):
            err(f"scrape: family {n} of src/run/prom.c is not in the scrape")

    for e in errors:
        print("prometheus_check: " + e, file=sys.stderr)
    if errors:
        return 1
    print(f"prometheus_check: ok: {len(families)} metric families, {len(records)} recording rules, "
          f"{len(names)} alerts with runbooks, {n_dash} dashboard queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
