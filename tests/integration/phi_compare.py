#!/usr/bin/env python3
"""Compares the clinic tables of a field-encrypted database, read decrypted
through `pgscribe show --all` (one call per table and clinic), with a clear
reference database read with psql: every column but created_at and
updated_at, as PostgreSQL's text output. Prints counts and the ids (never
values) of differing rows.
Usage: phi_compare.py PGSCRIBE KEYRING CONNINFO_ENC CONNINFO_REF
Exit: 0 equal and not empty, 1 otherwise."""
import csv
import io
import json
import subprocess
import sys

TABLES = ["patients", "appointments", "encounters", "prescriptions"]
SKIP = {"created_at", "updated_at"}
NULL = "<<NULL>>"

pgscribe, keyring, enc, ref = sys.argv[1:5]


def psql(conninfo, sql):
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def reference(table):
    cols = psql(ref, "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)"
                     " FROM information_schema.columns WHERE table_schema = 'clinic'"
                     " AND table_name = '%s'" % table).strip().split(",")
    cols = [c for c in cols if c not in SKIP]
    sel = ", ".join("%s::text" % c for c in cols)
    out = psql(ref, "COPY (SELECT %s FROM clinic.%s) TO STDOUT WITH (FORMAT csv, NULL '%s')"
               % (sel, table, NULL))
    rows = {}
    for rec in csv.reader(io.StringIO(out)):
        row = {c: (None if v == NULL else v) for c, v in zip(cols, rec)}
        rows[(row["clinic_id"], row["id"])] = row
    return rows


def decrypted(table, clinics):
    rows = {}
    for clinic in clinics:
        p = subprocess.run([pgscribe, "show", "--keyring", keyring, "--conninfo", enc,
                            "--clinic", clinic, "--entity", "clinic." + table, "--all",
                            "--operator", "phi-compare"], capture_output=True, text=True)
        if p.returncode != 0:
            print("show failed for %s of %s: %s" % (table, clinic, p.stderr.strip()))
            sys.exit(1)
        for line in p.stdout.splitlines():
            row = {k: v for k, v in json.loads(line).items() if k not in SKIP}
            rows[(row["clinic_id"], row["id"])] = row
    return rows


status = 0
total = 0
for t in TABLES:
    want = reference(t)
    clinics = sorted(set(c for c, _ in want) |
                     set(psql(enc, "SELECT DISTINCT clinic_id FROM clinic.%s" % t).split()))
    got = decrypted(t, clinics)
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    total += len(want)
    print("%s: %d reference rows, %d decrypted rows, %d differ" % (t, len(want), len(got), len(bad)))
    for k in bad[:10]:
        w, g = want.get(k), got.get(k)
        cols = sorted(c for c in set(w or {}) | set(g or {}) if (w or {}).get(c) != (g or {}).get(c))
        print("  differs: %s/%s columns %s" % (k[0], k[1], ",".join(cols)))
    if bad:
        status = 1
if total == 0:
    print("every table is empty")
    status = 1
sys.exit(status)
