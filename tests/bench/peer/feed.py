#!/usr/bin/env python3
"""The benchmark peer's feed: pgscribe's generated commands as Kafka Connect
records, one record per command.

Reads the JSON lines that `pgscribe produce --emit` wrote and replays them in
order, keeping each row's state the way pgscribe applies the commands (INSERT
fills the columns it names and the table's defaults, UPDATE changes the
columns it names, UPSERT does one or the other, each write adds 1 to
`version`, DELETE removes the row). For every command it writes the row as it
stands after the command, as a JsonConverter record with its schema
(schemas.enable=true): key = the primary key struct, value = the flat row
struct (no envelope), or no value (a tombstone) for a DELETE. One file per
table, one `key<TAB>value` line per record, for `kcat -P -K<TAB> -Z`.

Also writes expected.txt: per table the row count and the sum of `version`
after the last command (the end condition the script polls for), and the
md5 of the sorted `id:version` list (checked once at the end).

Only the standard library is needed.
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

UUID = {"type": "string", "name": "io.debezium.data.Uuid", "version": 1}
TS = {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1}
DATE = {"type": "int32", "name": "org.apache.kafka.connect.data.Date", "version": 1}
DEC2 = {"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
        "parameters": {"scale": "2", "connect.decimal.precision": "5"}}
TEXT = {"type": "string"}
INT = {"type": "int32"}
BIGINT = {"type": "int64"}
BOOL = {"type": "boolean"}

# The non-key columns of clinic.<table> in table order (created_at is left to
# its default), each with its Connect type, whether it may be null, and the
# table's default for an INSERT that does not name it.
TABLES = {
    "patients": [
        ("clinic_id", TEXT, False, None), ("mrn", TEXT, True, None),
        ("given_name", TEXT, True, None), ("family_name", TEXT, True, None),
        ("birth_date", DATE, True, None), ("sex", TEXT, True, None),
        ("phone", TEXT, True, None), ("email", TEXT, True, None),
        ("address", TEXT, True, None), ("weight_kg", DEC2, True, None),
        ("active", BOOL, False, True), ("notes", TEXT, True, None),
        # photo (bytea) is left out, its column stays NULL: with
        # dialect.postgres.unnest.insert.enabled the sink (3.5, 3.6) fails on
        # a batch holding a bytes field (the driver's createArrayOf refuses
        # byte[] inside Object[]; debezium/dbz#2357).
    ],
    "appointments": [
        ("clinic_id", TEXT, False, None), ("patient_id", UUID, False, None),
        ("practitioner", TEXT, True, None), ("starts_at", TS, False, None),
        ("duration_min", INT, True, None), ("status", TEXT, False, "booked"),
        ("reason", TEXT, True, None),
    ],
    "encounters": [
        ("clinic_id", TEXT, False, None), ("patient_id", UUID, False, None),
        ("appointment_id", UUID, True, None), ("kind", TEXT, True, None),
        ("started_at", TS, True, None), ("ended_at", TS, True, None),
        ("diagnosis_code", TEXT, True, None), ("notes", TEXT, True, None),
    ],
    "prescriptions": [
        ("clinic_id", TEXT, False, None), ("patient_id", UUID, False, None),
        ("encounter_id", UUID, True, None), ("drug_code", TEXT, False, None),
        ("drug_name", TEXT, True, None), ("dose", TEXT, True, None),
        ("quantity", INT, True, None), ("refills", INT, False, 0),
        ("status", TEXT, True, None), ("prescribed_at", TS, True, None),
    ],
}
TRAILER = [("version", BIGINT, False, None), ("updated_at", TS, False, None)]
EPOCH = datetime.date(1970, 1, 1)


def schema_json(table, cols):
    fields = [dict(t, field=name, optional=opt) for name, t, opt, _ in cols]
    return json.dumps({"type": "struct", "name": f"clinic.{table}.Value", "optional": True,
                       "fields": fields}, separators=(",", ":"))


def key_schema_json(table):
    return json.dumps({"type": "struct", "name": f"clinic.{table}.Key", "optional": False,
                       "fields": [dict(UUID, field="id", optional=False)]},
                      separators=(",", ":"))


def convert(t, value):
    """A command's data value in the JsonConverter form of the column's type."""
    if value is None:
        return None
    if t is DATE:
        return (datetime.date.fromisoformat(value) - EPOCH).days
    if t is DEC2:
        # A JSON number: the JsonConverter reads it as an exact BigDecimal.
        return round(float(value), 2)
    return value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", required=True, help="JSON lines of pgscribe produce --emit")
    ap.add_argument("--out", required=True, help="folder for <table>.records and expected.txt")
    args = ap.parse_args()

    cols = {t: c + TRAILER for t, c in TABLES.items()}
    types = {t: {name: typ for name, typ, _, _ in c} for t, c in cols.items()}
    head = {t: '{"schema":' + schema_json(t, c) + ',"payload":' for t, c in cols.items()}
    khead = {t: '{"schema":' + key_schema_json(t) + ',"payload":{"id":' for t in TABLES}
    out = {t: open(os.path.join(args.out, f"{t}.records"), "w", encoding="utf-8")
           for t in TABLES}
    rows = {t: {} for t in TABLES}
    n = 0
    with open(args.commands, encoding="utf-8") as src:
        for line in src:
            cmd = json.loads(line)
            table, op, key = cmd["entity"], cmd["op"], cmd["key"]["id"]
            if table.startswith("clinic."):
                table = table[len("clinic."):]
            if table not in TABLES:
                sys.exit(f"peer feed: command {cmd['command_id']}: unknown entity {table}")
            data = {k: convert(types[table][k], v) for k, v in (cmd.get("data") or {}).items()
                    if k in types[table]}  # photo is left out
            have = rows[table].get(key)
            if op == "DELETE":
                if have is None:
                    sys.exit(f"peer feed: command {cmd['command_id']}: DELETE of a missing row")
                del rows[table][key]
                value = None
            else:
                if op == "INSERT" or (op == "UPSERT" and have is None):
                    if have is not None:
                        sys.exit(f"peer feed: command {cmd['command_id']}: INSERT of a present row")
                    row = {name: default for name, _, _, default in cols[table]}
                    row["version"] = 0
                elif op in ("UPDATE", "UPSERT"):
                    if have is None:
                        sys.exit(f"peer feed: command {cmd['command_id']}: UPDATE of a missing row")
                    row = have
                else:
                    sys.exit(f"peer feed: command {cmd['command_id']}: unknown op {op}")
                row.update(data)
                row["clinic_id"] = cmd["clinic_id"]
                row["version"] += 1
                row["updated_at"] = datetime.datetime.fromtimestamp(
                    cmd["issued_at"] / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")
                rows[table][key] = row
                value = head[table] + json.dumps(row, separators=(",", ":")) + "}"
            out[table].write(khead[table] + json.dumps(key) + "}}\t" + (value or "") + "\n")
            n += 1
    for f in out.values():
        f.close()
    with open(os.path.join(args.out, "expected.txt"), "w", encoding="utf-8") as f:
        f.write(f"records {n}\n")
        for table in TABLES:
            live = rows[table]
            digest = hashlib.md5(",".join(f"{k}:{r['version']}" for k, r in
                                          sorted(live.items())).encode()).hexdigest()
            f.write(f"{table} {len(live)} {sum(r['version'] for r in live.values())} {digest}\n")


if __name__ == "__main__":
    main()
