#!/usr/bin/env python3
"""Mixes poison commands into a JSON-lines file of good WriteCommands.

Usage: poison_commands.py GOOD.jsonl MIXED.jsonl BAD_KEYS.txt [--bad N] [--seed S]
                          [--quantity Q]

Writes MIXED.jsonl: the good commands in their order with N bad commands at
random positions (deterministic for a seed). Each bad command is a fresh-key
INSERT into prescriptions whose quantity is Q (default 5000), so a CHECK
constraint on quantity rejects it. BAD_KEYS.txt gets one line per bad
command: its message key (clinic_id/prescriptions/id), as pgscribe produce
sets it.
"""
import argparse
import json
import random
import uuid


def bad_command(rng, quantity):
    def rid():
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    # Field order and shape copied from pgs_codec_json_from_command (produce --emit).
    return {
        "command_id": rid(),
        "clinic_id": "clinic-%03d" % rng.randint(1, 20),
        "actor": "user-%d" % rng.randint(1, 40),
        "entity": "prescriptions",
        "op": "INSERT",
        "key": {"id": rid()},
        "data": {
            "patient_id": rid(),
            "drug_code": "RX-%05d" % rng.randint(10000, 10099),
            "drug_name": "poison-test",
            "quantity": quantity,
            "refills": 0,
            "status": "active",
        },
        "expected_version": None,
        "issued_at": 1704067200000 + rng.randint(0, 86400000),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("good")
    ap.add_argument("mixed")
    ap.add_argument("bad_keys")
    ap.add_argument("--bad", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--quantity", type=int, default=5000)
    args = ap.parse_args()

    with open(args.good) as f:
        good = [line.rstrip("\n") for line in f if line.strip()]
    rng = random.Random(args.seed)
    total = len(good) + args.bad
    bad_at = set(rng.sample(range(total), args.bad))
    keys = []
    it = iter(good)
    with open(args.mixed, "w") as out:
        for pos in range(total):
            if pos in bad_at:
                cmd = bad_command(rng, args.quantity)
                keys.append("%s/%s/%s" % (cmd["clinic_id"], cmd["entity"], cmd["key"]["id"]))
                out.write(json.dumps(cmd, separators=(",", ":")) + "\n")
            else:
                out.write(next(it) + "\n")
    with open(args.bad_keys, "w") as out:
        out.write("".join(k + "\n" for k in keys))


if __name__ == "__main__":
    main()
