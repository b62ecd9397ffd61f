#!/usr/bin/env python3
"""Paced command load for the fairness test: writes JSON-line patient
INSERTs to stdout as they fall due, each stamped with the wall time it was
written (issued_at, ms), for `pgscribe produce --input -`.

The others (clinic-002..clinic-005) send at --others-rate each for
--seconds; clinic-001 sends at --flood-rate for --flood-seconds from the
start (0: not at all). Every command's id, clinic, phase and issued_at go to
--log as CSV, so commit latency can be read against applied_commands.
"""
import argparse
import json
import sys
import time
import uuid

ap = argparse.ArgumentParser()
ap.add_argument("--others-rate", type=float, required=True)
ap.add_argument("--seconds", type=float, required=True)
ap.add_argument("--flood-rate", type=float, default=0)
ap.add_argument("--flood-seconds", type=float, default=0)
ap.add_argument("--phase", required=True)
ap.add_argument("--log", required=True)
args = ap.parse_args()

# (due time, clinic) for every command, in time order
start = time.time() + 0.2
due = []
for c in range(2, 6):
    n = int(args.others_rate * args.seconds)
    # the four clinics interleaved, not in step
    due += [(start + (i + c / 5.0) / args.others_rate, "clinic-%03d" % c) for i in range(n)]
if args.flood_rate > 0:
    n = int(args.flood_rate * args.flood_seconds)
    due += [(start + i / args.flood_rate, "clinic-001") for i in range(n)]
due.sort()

log = open(args.log, "a")
out = sys.stdout
seq = 0
for t, clinic in due:
    now = time.time()
    if t > now:
        out.flush()
        time.sleep(t - now)
    seq += 1
    cid = str(uuid.uuid4())
    issued = int(time.time() * 1000)
    cmd = {
        "command_id": cid,
        "clinic_id": clinic,
        "actor": "user-fair",
        "entity": "patients",
        "op": "INSERT",
        "key": {"id": str(uuid.uuid4())},
        "data": {"mrn": "MRN-%s-%d" % (args.phase, seq), "given_name": "Fair",
                 "family_name": "Load", "active": True},
        "expected_version": None,
        "issued_at": issued,
    }
    out.write(json.dumps(cmd) + "\n")
    log.write("%s,%s,%s,%d\n" % (cid, clinic, args.phase, issued))
out.flush()
log.close()
