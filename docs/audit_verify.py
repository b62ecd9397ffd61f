#!/usr/bin/env python3
"""Reference verifier of pgscribe's audit trail, written from docs/audit.md alone.

usage: audit_verify.py CONNINFO [CLINIC]   verify every clinic's chain (or one)
       audit_verify.py --self-test         check docs/audit_vectors.json
Prints the first broken link of each clinic; exits 1 if any, else 0.
"""
import hashlib, json, os, struct, sys

ZERO = bytes(32)
COLUMNS = 11  # index of the one array field

def field(v):
    if v is None:
        return b"\xff\xff\xff\xff"
    b = v.encode("utf-8")
    return struct.pack(">I", len(b)) + b

def canonical(fields):
    out = b""
    for i, v in enumerate(fields):
        if i == COLUMNS and v is not None:
            out += struct.pack(">I", len(v)) + b"".join(field(x) for x in v)
        else:
            out += field(v)
    return out

def link(prev, fields):
    return hashlib.sha256(prev + canonical(fields)).digest()

SQL = """SELECT clinic_id, seq::text, kind, event_id::text, command_id::text,
  ((extract(epoch FROM occurred_at) * 1000000)::bigint)::text,
  ((extract(epoch FROM recorded_at) * 1000000)::bigint)::text, actor, action, entity, row_key,
  columns, outcome, recipient, purpose, description, source, details, source_topic,
  source_partition::text, source_offset::text, traceparent, prev_hash, hash
  FROM audit.events e WHERE clinic_id = %s ORDER BY e.seq"""

def verify(conn, clinic):
    """Returns None, or (seq, what) of the first broken link."""
    want_seq, want_prev = 1, ZERO
    b = conn.cursor()  # after retention: continue from the latest archived boundary
    b.execute("SELECT seq, hash FROM audit.archived_boundaries WHERE clinic_id = %s"
              " ORDER BY seq DESC LIMIT 1", (clinic,))
    boundary = b.fetchone()
    if boundary:
        want_seq, want_prev = boundary[0] + 1, bytes(boundary[1])
    with conn.cursor(name="rows") as cur:  # server-side cursor: constant memory
        cur.itersize = 10000
        cur.execute(SQL, (clinic,))
        for row in cur:
            fields, prev, stored = list(row[:22]), bytes(row[22]), bytes(row[23])
            if int(fields[1]) != want_seq:
                return want_seq, "row missing"
            if prev != want_prev:
                return want_seq, "prev_hash is not the previous row's hash"
            if link(prev, fields) != stored:
                return want_seq, "hash does not match the row's content"
            want_seq, want_prev = want_seq + 1, stored
    head = conn.cursor()
    head.execute("SELECT seq, hash FROM audit.chain_heads WHERE clinic_id = %s", (clinic,))
    seq, h = head.fetchone()
    if seq != want_seq - 1 or (seq > 0 and bytes(h) != want_prev):
        return want_seq, "the chain ends before its head (seq %d)" % seq
    head.execute("SELECT count(*) FROM audit.event_ids WHERE clinic_id = %s", (clinic,))
    ids = head.fetchone()[0]
    head.execute("SELECT count(*) FROM audit.events WHERE clinic_id = %s AND kind = 'event'", (clinic,))
    if ids > head.fetchone()[0]:
        return want_seq, "recorded event ids are missing from the chain"
    return None

def self_test():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audit_vectors.json")
    for v in json.load(open(path))["vectors"]:
        assert link(bytes.fromhex(v["prev_hash"]), v["fields"]).hex() == v["hash"], v
        if "canonical" in v:
            assert canonical(v["fields"]).hex() == v["canonical"], v
    print("vectors ok")

def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    import psycopg2
    conn = psycopg2.connect(argv[1])
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    cur = conn.cursor()
    cur.execute("SELECT clinic_id FROM audit.chain_heads WHERE %s IS NULL OR clinic_id = %s"
                " ORDER BY 1", (argv[2:3] or [None]) * 2)
    broken = 0
    for (clinic,) in cur.fetchall():
        bad = verify(conn, clinic)
        if bad:
            broken += 1
            print("broken: clinic %s seq %d: %s" % (clinic, bad[0], bad[1]))
    print("%d broken" % broken)
    return 1 if broken else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
