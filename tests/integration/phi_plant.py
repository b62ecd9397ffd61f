#!/usr/bin/env python3
"""Plants a unique marker in every string value of a PHI column of a
JSON-lines command file: PREFIX + a 7-digit serial + "Z" replaces the value
(so each marker is unique and no clear PHI of the generator remains).
Usage: phi_plant.py PREFIX IN.jsonl OUT.jsonl; prints the markers planted."""
import json
import sys

PHI = {
    "patients": {"mrn", "given_name", "family_name", "sex", "phone", "email", "address", "notes"},
    "appointments": {"reason"},
    "encounters": {"diagnosis_code", "notes"},
    "prescriptions": {"drug_code", "drug_name", "dose"},
}

prefix, src, dst = sys.argv[1:4]
n = 0
with open(src) as f, open(dst, "w") as out:
    for line in f:
        cmd = json.loads(line)
        cols = PHI.get(cmd.get("entity"), set())
        for name, value in (cmd.get("data") or {}).items():
            if name in cols and isinstance(value, str):
                n += 1
                cmd["data"][name] = "%s%07dZ" % (prefix, n)
        out.write(json.dumps(cmd, separators=(",", ":")) + "\n")
print(n)
