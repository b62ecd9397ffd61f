#!/usr/bin/env python3
"""Reference applier: turns a JSON-lines file of WriteCommands into a plain SQL
script that applies them one by one, in file order, with pgscribe's semantics.

Usage: reference.py [--column ENTITY.NAME:TYPE]... COMMANDS.jsonl |
           psql -X -q -v ON_ERROR_STOP=0 REFERENCE_DB

--column names a column added to the example schema (by a test's migration),
so commands that write it are applied rather than left out.

Each command is its own transaction, so a command that fails (an INSERT of a
row that exists, say) only aborts itself, as in pgscribe. UPDATE and DELETE
whose row or expected_version does not match change nothing (pgscribe
dead-letters them: the data outcome is the same). A command id seen before is
skipped. Commands pgscribe would reject before SQL (unknown entity or column,
reserved column, UPDATE without data, DELETE with data, wrong key) are left
out with a comment. Only the clinic schema is touched, never pgscribe.*.
"""
import base64
import json
import sys

SCHEMA = "clinic"
RESERVED = {"id", "clinic_id", "version", "created_at", "updated_at"}
KEY_COLUMNS = ["id"]

# Column types of the example schema: strings are cast to these, so the
# column's own input function parses them, as with pgscribe's bind parameters.
COMMON = {"id": "uuid", "clinic_id": "text"}
ENTITIES = {
    "patients": {
        "mrn": "text", "given_name": "text", "family_name": "text", "birth_date": "date",
        "sex": "text", "phone": "text", "email": "text", "address": "text",
        "weight_kg": "numeric(5,2)", "active": "boolean", "notes": "text", "photo": "bytea",
    },
    "appointments": {
        "patient_id": "uuid", "practitioner": "text", "starts_at": "timestamptz",
        "duration_min": "integer", "status": "clinic.appointment_status", "reason": "text",
    },
    "encounters": {
        "patient_id": "uuid", "appointment_id": "uuid", "kind": "text",
        "started_at": "timestamptz", "ended_at": "timestamptz", "diagnosis_code": "text",
        "notes": "text",
    },
    "prescriptions": {
        "patient_id": "uuid", "encounter_id": "uuid", "drug_code": "text", "drug_name": "text",
        "dose": "text", "quantity": "integer", "refills": "integer", "status": "text",
        "prescribed_at": "timestamptz",
    },
}


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def literal(value, sql_type):
    """A Value (contract JSON form) as an SQL literal for a column of sql_type."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return quote(value) + "::" + sql_type
    if isinstance(value, dict) and set(value) == {"bytes"}:
        raw = base64.b64decode(value["bytes"], validate=True)
        return "'\\x" + raw.hex() + "'::bytea"
    raise ValueError("unsupported value type")


def statement(cmd):
    """The SQL statement of one command, or (None, reason) if pgscribe would
    reject it before reaching SQL."""
    entity = cmd.get("entity")
    if entity not in ENTITIES:
        return None, "unknown entity"
    types = dict(COMMON, **ENTITIES[entity])
    op = cmd.get("op")
    key = cmd.get("key") or {}
    data = cmd.get("data") or {}
    ev = cmd.get("expected_version")
    clinic = cmd.get("clinic_id")
    if sorted(key) != sorted(KEY_COLUMNS):
        return None, "key columns differ from the primary key"
    for col in data:
        if col in RESERVED:
            return None, "reserved column in data"
        if col not in types:
            return None, "unknown column"
    table = ident(SCHEMA) + "." + ident(entity)
    where = ["t.%s = %s" % (ident(c), literal(v, types[c])) for c, v in key.items()]
    where.append("t.clinic_id = %s" % quote(clinic))
    if ev is not None:
        where.append("t.version = %d" % ev)

    if op in ("INSERT", "UPSERT"):
        cols = list(key) + ["clinic_id"] + list(data)
        vals = [literal(v, types[c]) for c, v in key.items()] + [quote(clinic)]
        vals += [literal(v, types[c]) for c, v in data.items()]
        sql = "INSERT INTO %s AS t (%s) VALUES (%s)" % (
            table, ", ".join(ident(c) for c in cols), ", ".join(vals))
        if op == "UPSERT":
            sets = ["%s = EXCLUDED.%s" % (ident(c), ident(c)) for c in data]
            sets += ["version = t.version + 1", "updated_at = now()"]
            # The clinic guard stands in for row-level security: pgscribe
            # can never update another clinic's row.
            guard = ["t.clinic_id = EXCLUDED.clinic_id"]
            if ev is not None:
                guard.append("t.version = %d" % ev)
            # the example schema's keys are (clinic_id, id) (migration 0007)
            target = ["clinic_id"] + [c for c in key if c != "clinic_id"]
            sql += " ON CONFLICT (%s) DO UPDATE SET %s WHERE %s" % (
                ", ".join(ident(c) for c in target), ", ".join(sets), " AND ".join(guard))
        return sql, None
    if op == "UPDATE":
        if not data:
            return None, "UPDATE without data"
        sets = ["%s = %s" % (ident(c), literal(v, types[c])) for c, v in data.items()]
        sets += ["version = t.version + 1", "updated_at = now()"]
        return "UPDATE %s AS t SET %s WHERE %s" % (table, ", ".join(sets), " AND ".join(where)), None
    if op == "DELETE":
        if data:
            return None, "DELETE with data"
        return "DELETE FROM %s AS t WHERE %s" % (table, " AND ".join(where)), None
    return None, "unknown op"


def main(argv):
    args = argv[1:]
    while len(args) >= 2 and args[0] == "--column":
        name, _, sql_type = args[1].partition(":")
        entity, _, column = name.partition(".")
        if entity not in ENTITIES or not column or not sql_type:
            sys.stderr.write("reference.py: --column wants ENTITY.NAME:TYPE\n")
            return 2
        ENTITIES[entity][column] = sql_type
        args = args[2:]
    argv = argv[:1] + args
    if len(argv) != 2:
        sys.stderr.write("usage: reference.py [--column ENTITY.NAME:TYPE]... COMMANDS.jsonl\n")
        return 2
    out = sys.stdout
    out.write("SET standard_conforming_strings = on;\n")
    out.write("SET client_min_messages = warning;\n")
    seen = set()
    stream = sys.stdin if argv[1] == "-" else open(argv[1], encoding="utf-8")
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                cmd = json.loads(line)
                command_id = cmd["command_id"]
                clinic = cmd["clinic_id"]
                if command_id in seen:
                    out.write("-- line %d: duplicate command id, skipped\n" % lineno)
                    continue
                seen.add(command_id)
                sql, reason = statement(cmd)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # Names the problem, never a value: lines carry PHI in spirit.
                out.write("-- line %d: undecodable (%s), skipped\n" % (lineno, type(exc).__name__))
                continue
            if sql is None:
                out.write("-- line %d: %s, skipped\n" % (lineno, reason))
                continue
            # SET LOCAL = set_config(..., is_local => true), without a result
            # row for psql to print.
            out.write("BEGIN; SET LOCAL pgscribe.clinic_id = %s;\n" % quote(clinic))
            out.write(sql + ";\nCOMMIT;\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
