#!/usr/bin/env python3
"""PostgreSQL's own write limit on the rows a pgscribe run produced.

Takes the final rows of the clinic tables of the source database (the one the
worker wrote), each with the command that last wrote it (from the write audits
of audit.events and applied_commands), and loads them as the superuser into empty copies of the
same tables in the destination database (migrated the same way: same columns,
same indexes, same cluster) three times, emptying the tables in between:

  copy       COPY ... FROM STDIN (psql \\copy), one session, one table after another
  multirow   INSERT ... VALUES (...),(...) of BATCH rows, one transaction per
             statement, SESSIONS psql sessions in parallel
  semantics  the same, plus per row one pgscribe.applied_commands row and one
             chained audit.events row (one audit.append_transaction_writes
             per transaction, as the worker's write audit): batches of BATCH
             rows of one clinic, one transaction each, and each clinic kept
             to one session (as the worker's lanes keep a clinic's
             transactions apart), so no two sessions wait on one chain head

Prints key=value lines (rows, *_s, *_rows_per_s, missing_extras) on stdout.
Only psql is needed: no Python database driver.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import uuid

TABLES = ["patients", "appointments", "encounters", "prescriptions"]
EXTRA_COLS = ["command_id", "actor", "entity", "op", "row_key", "topic", "kafka_partition",
              "kafka_offset"]
COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
ESCAPE_RE = re.compile(r"\\(.)")


def psql_cmd(args, db):
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", args.host, "-p", str(args.port),
            "-U", "postgres", "-d", db]


def psql(args, db, sql):
    out = subprocess.run(psql_cmd(args, db) + ["-At", "-c", sql], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def columns(args, table):
    got = psql(args, args.src_db,
               "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position) "
               "FROM information_schema.columns "
               f"WHERE table_schema = 'clinic' AND table_name = '{table}'")
    return got.split(",")


def export(args, table, cols, path):
    """Rows of TABLE plus the command that wrote each row last, as COPY text."""
    query = (
        "WITH last AS (SELECT DISTINCT ON (w.row_key) w.row_key::jsonb AS row_key, w.command_id,"
        " w.actor, w.entity, w.action AS op FROM audit.events w"
        f" WHERE w.kind = 'write' AND w.entity IN ('{table}', 'clinic.{table}')"
        " ORDER BY w.row_key, w.recorded_at DESC, w.seq DESC)"
        f" SELECT {', '.join('t.' + c for c in cols)}, l.command_id, l.actor, l.entity, l.op,"
        " l.row_key, a.topic, a.kafka_partition, a.kafka_offset"
        f" FROM clinic.{table} t LEFT JOIN last l ON l.row_key ->> 'id' = t.id::text"
        " LEFT JOIN pgscribe.applied_commands a ON a.command_id = l.command_id")
    subprocess.run(psql_cmd(args, args.src_db) + ["-c", f"\\copy ({query}) TO '{path}'"],
                   check=True)


def literal(field):
    if field == "\\N":
        return "NULL"
    value = ESCAPE_RE.sub(lambda m: COPY_ESCAPES.get(m.group(1), m.group(1)), field)
    return "'" + value.replace("'", "''") + "'"


def load_rows(args):
    """{table: (cols, [(row_fields, extra_fields)])}; writes the COPY input files."""
    data = {}
    for table in TABLES:
        cols = columns(args, table)
        raw = os.path.join(args.work, f"{table}.export")
        export(args, table, cols, raw)
        rows = []
        with open(raw, encoding="utf-8") as src, \
                open(os.path.join(args.work, f"{table}.copy"), "w", encoding="utf-8") as dst:
            for line in src:
                fields = line.rstrip("\n").split("\t")
                if len(fields) != len(cols) + len(EXTRA_COLS):
                    sys.exit(f"pg_baseline: {table}: unexpected field count {len(fields)}")
                rows.append((fields[:len(cols)], fields[len(cols):]))
                dst.write("\t".join(fields[:len(cols)]) + "\n")
        data[table] = (cols, rows)
    return data


def batches(data, size):
    out = []
    for table in TABLES:
        cols, rows = data[table]
        for i in range(0, len(rows), size):
            out.append((table, cols, rows[i:i + size]))
    return out


def clinic_batches(data, size):
    """Batches of at most SIZE rows of one table and one clinic, with the
    clinic: the shape of the worker's transactions (one clinic each)."""
    out = []
    for table in TABLES:
        cols, rows = data[table]
        clinic_at = cols.index("clinic_id")
        by_clinic = {}
        for row in rows:
            by_clinic.setdefault(row[0][clinic_at], []).append(row)
        for clinic, its in by_clinic.items():
            for i in range(0, len(its), size):
                out.append((clinic, (table, cols, its[i:i + size])))
    return out


def multirow_sql(table, cols, chunk):
    values = ",".join("(" + ",".join(literal(f) for f in row) + ")" for row, _ in chunk)
    return f"INSERT INTO clinic.{table} ({','.join(cols)}) VALUES {values};\n"


def semantics_sql(table, cols, chunk, missing):
    """Row insert + idempotency rows + chained audit rows, as the worker does it:
    one transaction per clinic of the batch (the walls), the clinic's chain
    head locked first, the write audits appended by one
    audit.append_transaction_writes after the rows."""
    clinic_at = cols.index("clinic_id")
    id_at = cols.index("id")
    groups = {}
    for row, extra in chunk:
        command_id, actor, entity, op, row_key, topic, part, offset = extra
        if command_id == "\\N":
            # Not expected: every row has an audit row; a stand-in keeps the
            # baseline's work the same rather than failing the whole run.
            missing[0] += 1
            command_id, actor, entity, op = str(uuid.uuid4()), "bench", table, "INSERT"
            row_key = '{"id": "%s"}' % row[id_at]
            topic, part, offset = "bench", "0", str(missing[0])
        item = (row, extra, command_id, actor, entity, row_key, topic, part, offset)
        groups.setdefault(row[clinic_at], {}).setdefault(op, []).append(item)
    out = ""
    for clinic, by_op in groups.items():
        items = [it for its in by_op.values() for it in its]
        out += ("BEGIN;\nSELECT set_config('pgscribe.clinic_id', %s, true), audit.lock_head();\n"
                % literal(clinic))
        out += multirow_sql(table, cols, [(it[0], it[1]) for it in items])
        out += ("INSERT INTO pgscribe.applied_commands"
                " (command_id, clinic_id, topic, kafka_partition, kafka_offset) VALUES "
                + ",".join(f"({literal(it[2])},{literal(clinic)},{literal(it[6])},{it[7]},{it[8]})"
                           for it in items) + ";\n")
        # one chained append for the transaction, as the worker's write
        # audit statement (audit.append_transaction_writes, after the rows)
        arr = lambda vals, t: "ARRAY[" + ",".join(vals) + "]::" + t
        out += ("SELECT audit.append_transaction_writes("
                + arr([literal(it[2]) for it in items], "uuid[]") + ", "
                + arr([literal(it[3]) for it in items], "text[]") + ", "
                + arr(["0"] * len(items), "bigint[]") + ", "
                + arr([literal(it[5]) for it in items], "text[]") + ", "
                + arr(["NULL"] * len(items), "text[]") + ", "
                + arr([it[7] for it in items], "int[]") + ", "
                + arr([it[8] for it in items], "bigint[]") + ", "
                + arr(["NULL"] * len(items), "text[]") + ", "
                + arr([literal(it[4]) for it in items], "text[]") + ", "
                + arr([literal(op) for op, its in by_op.items() for _ in its], "text[]") + ", "
                + f"{literal(items[0][6])});\n")
        out += "COMMIT;\n"
    return out


def write_sessions(args, name, statements, keys=None):
    """Statements spread over the sessions round robin, or by KEYS (one key's
    statements all in one session, keys in order of first appearance)."""
    paths = [os.path.join(args.work, f"{name}-{i}.sql") for i in range(args.sessions)]
    files = [open(p, "w", encoding="utf-8") for p in paths]
    session_of = {}
    for i, stmt in enumerate(statements):
        if keys is not None:
            i = session_of.setdefault(keys[i], len(session_of))
        files[i % len(files)].write(stmt)
    for f in files:
        f.close()
    return paths


def reset(args):
    # the audit trail refuses TRUNCATE (append-only): the superuser lifts
    # the triggers for this session only
    psql(args, args.dst_db,
         "SET session_replication_role = replica; TRUNCATE " + ", ".join(f"clinic.{t}" for t in TABLES)
         + ", pgscribe.applied_commands, audit.events, audit.chain_heads, audit.event_ids")
    # Each phase starts with no dirty buffers left over by the previous one.
    psql(args, args.dst_db, "CHECKPOINT")


def check_loaded(args, phase, expected):
    got = sum(int(psql(args, args.dst_db, f"SELECT count(*) FROM clinic.{t}")) for t in TABLES)
    if got != expected:
        sys.exit(f"pg_baseline: {phase} loaded {got} rows, expected {expected}")


def exited_children_ticks(pm_pid):
    """cutime+cstime of the postmaster: the CPU of its children that exited,
    which is where the phase's psql backends end up once their session ends."""
    if not pm_pid:
        return 0
    with open(f"/proc/{pm_pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])


def wal_bytes(args):
    return int(float(psql(args, args.dst_db, "SELECT wal_bytes FROM pg_stat_wal")))


def run_parallel(args, paths, costs=None):
    w0 = wal_bytes(args)
    c0 = exited_children_ticks(args.pm_pid)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(psql_cmd(args, args.dst_db) + ["-f", p]) for p in paths]
    rcs = [p.wait() for p in procs]
    elapsed = time.perf_counter() - t0
    if any(rcs):
        sys.exit(f"pg_baseline: a psql session failed (exit codes {rcs})")
    if costs is not None:
        # the backends have exited once psql has: their CPU is in cutime/cstime
        time.sleep(0.2)
        costs["backend_ticks"] = exited_children_ticks(args.pm_pid) - c0
        costs["wal_bytes"] = wal_bytes(args) - w0
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--src-db", required=True)
    ap.add_argument("--dst-db", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--pm-pid", type=int, default=0,
                    help="the postmaster, for the semantics phase's backend CPU")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    data = load_rows(args)
    total = sum(len(rows) for _, rows in data.values())
    if total == 0:
        sys.exit("pg_baseline: the source database holds no rows")
    chunks = batches(data, args.batch)
    missing = [0]
    multi_paths = write_sessions(args, "multirow", (multirow_sql(*c) for c in chunks))
    sem_chunks = clinic_batches(data, args.batch)
    sem_paths = write_sessions(args, "semantics", (semantics_sql(*c, missing) for _, c in sem_chunks),
                               [clinic for clinic, _ in sem_chunks])
    copy_script = os.path.join(args.work, "copy.sql")
    with open(copy_script, "w", encoding="utf-8") as f:
        for table in TABLES:
            cols = data[table][0]
            path = os.path.join(args.work, f"{table}.copy")
            f.write(f"\\copy clinic.{table} ({','.join(cols)}) FROM '{path}'\n")

    results = {}
    reset(args)
    results["copy"] = run_parallel(args, [copy_script])
    check_loaded(args, "copy", total)
    reset(args)
    results["multirow"] = run_parallel(args, multi_paths)
    check_loaded(args, "multirow", total)
    reset(args)
    costs = {}
    results["semantics"] = run_parallel(args, sem_paths, costs)
    check_loaded(args, "semantics", total)

    print(f"rows={total}")
    print(f"batches={len(chunks)}")
    print(f"missing_extras={missing[0]}")
    hz = os.sysconf("SC_CLK_TCK")
    print(f"semantics_backend_cpu_s={costs['backend_ticks'] / hz:.3f}")
    print(f"semantics_wal_bytes={costs['wal_bytes']}")
    for phase, secs in results.items():
        print(f"{phase}_s={secs:.3f}")
        print(f"{phase}_rows_per_s={round(total / secs)}")


if __name__ == "__main__":
    main()
