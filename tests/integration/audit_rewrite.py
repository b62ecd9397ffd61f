"""Rewrites one clinic's whole audit chain consistently, as an attacker with
superuser rights would: changes one row's actor, recomputes every prev_hash
and hash with the reference verifier's logic (docs/audit_verify.py) and moves
the head along, with the triggers off. Plain verification then passes; only
an anchor kept outside the database can tell.

usage: audit_rewrite.py CONNINFO CLINIC SEQ
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs"))
import audit_verify  # noqa: E402
import psycopg2  # noqa: E402


def main(conninfo, clinic, seq):
    conn = psycopg2.connect(conninfo)
    cur = conn.cursor()
    cur.execute("SET LOCAL session_replication_role = replica")
    cur.execute("UPDATE audit.events SET actor = 'mallory' WHERE clinic_id = %s AND seq = %s",
                (clinic, seq))
    if cur.rowcount != 1:
        sys.exit("no row %s of clinic %s" % (seq, clinic))
    cur.execute(audit_verify.SQL, (clinic,))
    rows = cur.fetchall()
    prev = audit_verify.ZERO
    for row in rows:
        fields = list(row[:22])
        h = audit_verify.link(prev, fields)
        cur.execute("UPDATE audit.events SET prev_hash = %s, hash = %s"
                    " WHERE clinic_id = %s AND seq = %s",
                    (psycopg2.Binary(prev), psycopg2.Binary(h), clinic, int(fields[1])))
        prev = h
    cur.execute("UPDATE audit.chain_heads SET hash = %s WHERE clinic_id = %s",
                (psycopg2.Binary(prev), clinic))
    conn.commit()
    print("rewrote %d rows of %s" % (len(rows), clinic))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
