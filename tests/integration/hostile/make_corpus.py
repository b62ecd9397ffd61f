#!/usr/bin/env python3
"""Writes the hostile-input corpus: cases/<name>.<json|avro> and expected.tsv.

Run from anywhere; output goes beside this script. Deterministic: running it
again rewrites the same bytes. The Avro cases are encoded by hand (Confluent
framing + Avro binary encoding of schemas/avro/WriteCommand.v2.avsc and
AuditEvent.v1.avsc) so that no Avro library is needed and malformed variants
are easy to make.

Every PHI-like value in the corpus contains MARKER, so the integration test
can check that no dead-letter message repeats a value.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
MARKER = "PHI-MARKER"
CLINIC = "clinic-hostile"
SQL_VALUE = "'); DROP TABLE clinic.patients; --"
ISSUED_AT = 1700000000000

# ---- Avro binary encoding -------------------------------------------------


def zz(n):
    """A long as a zig-zag varint."""
    n = (n << 1) ^ (n >> 63)
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def a_bytes(b):
    return zz(len(b)) + b


def a_str(s):
    return a_bytes(s.encode("utf-8") if isinstance(s, str) else s)


# Value = ["null", "boolean", "long", "double", "string", "bytes"]
def a_value(v):
    if v is None:
        return zz(0)
    if isinstance(v, bool):
        return zz(1) + (b"\x01" if v else b"\x00")
    if isinstance(v, int):
        return zz(2) + zz(v)
    if isinstance(v, float):
        return zz(3) + struct.pack("<d", v)
    if isinstance(v, (str, RawStr)):
        return zz(4) + a_str(v.raw if isinstance(v, RawStr) else v)
    if isinstance(v, bytes):
        return zz(5) + a_bytes(v)
    raise TypeError(type(v))


class RawStr:
    """A string field whose bytes are written as given (may be invalid)."""

    def __init__(self, raw):
        self.raw = raw


def a_map(d, enc):
    """One block with every entry, then the end marker."""
    if not d:
        return zz(0)
    out = zz(len(d))
    for k, v in d.items():
        out += a_str(k) + enc(v)
    return out + zz(0)


OPS = ["INSERT", "UPSERT", "UPDATE", "DELETE"]


def avro_command(c, op_index=None):
    """The record body of a WriteCommand v2 (no framing)."""
    ev = c.get("expected_version")
    return (a_str(c["command_id"]) + a_str(c["clinic_id"]) + a_str(c["actor"]) +
            a_str(c["entity"]) +
            zz(OPS.index(c["op"]) if op_index is None else op_index) +
            a_map(c["key"], a_value) + a_map(c.get("data", {}), a_value) +
            (zz(0) if ev is None else zz(1) + zz(ev)) + zz(c["issued_at"]))


def avro_audit(e):
    return (a_str(e["event_id"]) + a_str(e["clinic_id"]) + a_str(e["actor"]) +
            a_str(e["action"]) + a_str(e["resource_type"]) + a_str(e["resource_id"]) +
            zz(["SUCCESS", "DENIED", "ERROR"].index(e["outcome"])) +
            zz(e["occurred_at"]) + a_str(e["source"]) + a_map(e["details"], a_str))


def frame(schema_id, body, magic=0):
    return bytes([magic]) + struct.pack(">i", schema_id) + body


# ---- commands -------------------------------------------------------------


def uid(n, prefix="c0ffee00"):
    """A deterministic canonical uuid."""
    return "%s-0000-4000-8000-%012d" % (prefix, n)


def command(n, **over):
    c = {
        "command_id": uid(n),
        "clinic_id": CLINIC,
        "actor": "user:hostile",
        "entity": "patients",
        "op": "INSERT",
        "key": {"id": uid(n, "0a7e0000")},
        "data": {"given_name": MARKER + " given %d" % n, "active": True},
        "issued_at": ISSUED_AT + n,
    }
    c.update(over)
    return c


def js(c):
    return json.dumps(c, ensure_ascii=False).encode("utf-8")


def build():
    """[(file name, bytes, class, code)]; class 'applied' = must be applied."""
    cases = []

    def add(name, data, klass, code):
        cases.append((name, data, klass, code))

    # -- Avro
    valid = frame(2, avro_command(command(1, data={"given_name": MARKER + " avro",
                                                     "weight_kg": 71.5,
                                                     "photo": b"\x89PNG\r\n"})))
    add("avro_valid.avro", valid, "applied", "-")
    cut = frame(2, avro_command(command(2)))
    add("avro_truncated.avro", cut[:len(cut) // 2], "decode", "DECODE_TRUNCATED")
    add("avro_bad_magic.avro", frame(2, avro_command(command(3)), magic=1), "decode",
        "DECODE_BAD_MAGIC")
    add("avro_unknown_schema.avro", frame(99, avro_command(command(4))), "decode",
        "DECODE_UNKNOWN_SCHEMA")
    audit = {"event_id": uid(5), "clinic_id": CLINIC, "actor": "user:hostile",
             "action": "EXPORT", "resource_type": "patients", "resource_id": "1",
             "outcome": "DENIED", "occurred_at": ISSUED_AT, "source": "portal",
             "details": {"reason": MARKER}}
    add("avro_audit_schema.avro", frame(3, avro_audit(audit)), "decode",
        "DECODE_UNKNOWN_SCHEMA")
    add("avro_bad_op.avro", frame(2, avro_command(command(6), op_index=9)), "decode",
        "DECODE_BAD_OP")
    # a string that claims 2^40 bytes in a 20-byte message
    add("avro_huge_length.avro", frame(2, zz(1 << 40) + b"0123456789"), "decode",
        "DECODE_TRUNCATED")
    add("avro_trailing_bytes.avro", frame(2, avro_command(command(8)) + b"\x00\x00"),
        "decode", "DECODE_AVRO")
    body = avro_command(command(9, data={}))
    # swap the key map's union branch (string = 4 → 7, out of range)
    key_at = body.index(a_str("id") + zz(4))
    bad_union = body[:key_at] + a_str("id") + zz(7) + body[key_at + len(a_str("id")) + 1:]
    add("avro_bad_union.avro", frame(2, bad_union), "decode", "DECODE_AVRO")
    add("avro_nul_byte.avro",
        frame(2, avro_command(command(10, data={"notes": RawStr(b"PHI-MARKER\x00x")}))),
        "decode", "DECODE_NUL_BYTE")
    add("avro_bad_utf8.avro",
        frame(2, avro_command(command(11, data={"notes": RawStr(b"PHI-MARKER \xc3\x28")}))),
        "decode", "DECODE_BAD_UTF8")
    add("empty.avro", b"", "decode", "DECODE_EMPTY")

    # -- JSON
    add("json_syntax.json", js(command(20))[:-7], "decode", "DECODE_JSON_SYNTAX")
    add("json_not_object.json", b'["' + MARKER.encode() + b'", 1]', "decode",
        "DECODE_WRONG_TYPE")
    add("json_wrong_type.json", js(command(22, op=5)), "decode", "DECODE_WRONG_TYPE")
    c = command(23)
    del c["entity"]
    add("json_missing_field.json", js(c), "decode", "DECODE_MISSING_FIELD")
    big = MARKER + "-" + "x" * (1100 * 1024)
    add("json_string_too_large.json", js(command(24, data={"notes": big})), "decode",
        "DECODE_TOO_LARGE")
    add("json_bad_utf8.json",
        js(command(25, data={"given_name": "@@BAD@@"})).replace(b"@@BAD@@",
                                                                b"PHI-MARKER \xff\xfe"),
        "decode", "DECODE_BAD_UTF8")
    add("json_nul_byte.json", js(command(26, data={"given_name": MARKER + "\u0000x"})),
        "decode", "DECODE_NUL_BYTE")
    add("json_sql_entity.json",
        js(command(27, entity="patients; DROP TABLE clinic.patients; --")), "validate",
        "VALIDATE_UNKNOWN_ENTITY")
    add("json_sql_column.json",
        js(command(28, data={"given_name\" = 'x'; --": MARKER})), "validate",
        "VALIDATE_UNKNOWN_COLUMN")
    add("json_sql_value.json", js(command(29, data={"given_name": SQL_VALUE})), "applied",
        "-")
    add("json_bad_op.json", js(command(30, op="MERGE")), "decode", "DECODE_BAD_OP")
    add("json_tenant_mismatch.json",
        js(command(31, data={"given_name": MARKER, "clinic_id": "clinic-other"})), "tenant",
        "TENANT_MISMATCH")
    add("json_bad_uuid.json", js(command(32, command_id="c0ffee00-0000-4000-8000-00000000003Z")),
        "decode", "DECODE_BAD_UUID")
    add("json_bad_base64.json",
        js(command(33, data={"photo": {"bytes": "PHI-MARKER!!not*base64"}})), "decode",
        "DECODE_BAD_BASE64")
    # valid for the codec and the catalog; PostgreSQL's uuid input rejects it
    # (invalid_text_representation), and its error text would quote the value
    add("json_sql_key_value.json",
        js(command(34, key={"id": MARKER + "'; DROP TABLE clinic.patients; --"})),
        "db-permanent", "22P02")
    return cases


def main():
    os.makedirs(CASES, exist_ok=True)
    for f in os.listdir(CASES):
        os.unlink(os.path.join(CASES, f))
    cases = build()
    with open(os.path.join(HERE, "expected.tsv"), "w") as tsv:
        tsv.write("# file\tclass\tcode  (class 'applied': must be applied, not dead-lettered)\n")
        for name, data, klass, code in cases:
            with open(os.path.join(CASES, name), "wb") as f:
                f.write(data)
            tsv.write("%s\t%s\t%s\n" % (name, klass, code))
    print("wrote %d cases to %s" % (len(cases), CASES), file=sys.stderr)


if __name__ == "__main__":
    main()
