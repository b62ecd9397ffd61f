#!/usr/bin/env python3
"""Commands of a producer one version ahead of the schema: they write a
column an expand migration adds (prescriptions.pharmacy_note).

Usage: schema_change_commands.py OUT.jsonl --count N [--seed S] [--column NAME]

Writes N INSERTs of fresh prescriptions that set the column, each followed
later in the file by an UPDATE of the same key that sets it again (so a key's
order is tested across the wait for the catalog). Field shapes as in
pgs_codec_json_from_command (produce --emit).
"""
import argparse
import json
import random
import uuid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--column", default="pharmacy_note")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    def rid():
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    lines = []
    keys = []
    for i in range(args.count):
        key = rid()
        clinic = "clinic-%03d" % rng.randint(1, 5)
        keys.append((key, clinic))
        lines.append({
            "command_id": rid(), "clinic_id": clinic, "actor": "user-%d" % rng.randint(1, 9),
            "entity": "prescriptions", "op": "INSERT", "key": {"id": key},
            "data": {"patient_id": rid(), "drug_code": "RX-%05d" % rng.randint(10000, 10099),
                     "quantity": rng.randint(1, 90), "refills": 0, "status": "active",
                     args.column: "note %d" % i},
            "expected_version": None, "issued_at": 1704067200000 + i,
        })
    for i, (key, clinic) in enumerate(keys):
        lines.append({
            "command_id": rid(), "clinic_id": clinic, "actor": "user-1",
            "entity": "prescriptions", "op": "UPDATE", "key": {"id": key},
            "data": {args.column: "updated %d" % i},
            "expected_version": None, "issued_at": 1704153600000 + i,
        })
    with open(args.out, "w") as f:
        for cmd in lines:
            f.write(json.dumps(cmd) + "\n")


if __name__ == "__main__":
    main()
