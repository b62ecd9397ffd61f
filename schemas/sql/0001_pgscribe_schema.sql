-- pgscribe's own bookkeeping: idempotency records, the write audit, the
-- per-column PHI policy, and the row-precondition check used by UPDATE/DELETE.
-- Applied by `pgscribe migrate` inside one transaction (no BEGIN/COMMIT here).

CREATE SCHEMA IF NOT EXISTS pgscribe;

-- One row per applied command, written in the same transaction as the write:
-- a redelivered command finds its id here and is skipped.
CREATE TABLE pgscribe.applied_commands (
    command_id      uuid PRIMARY KEY,
    clinic_id       text NOT NULL,
    topic           text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now()
);

-- Who changed which row, how, under which command. Never the values (PHI).
CREATE TABLE pgscribe.write_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id uuid NOT NULL,
    clinic_id  text NOT NULL,
    actor      text NOT NULL,
    entity     text NOT NULL,
    op         text NOT NULL CHECK (op IN ('INSERT', 'UPSERT', 'UPDATE', 'DELETE')),
    row_key    jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX write_audit_clinic_time ON pgscribe.write_audit (clinic_id, applied_at);

-- Which columns of the target schema hold PHI and which are stored encrypted.
CREATE TABLE pgscribe.column_policy (
    schema_name text,
    table_name  text,
    column_name text,
    is_phi      boolean NOT NULL DEFAULT false,
    encrypted   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (schema_name, table_name, column_name)
);

-- Wraps an UPDATE/DELETE's row count: a command that expected a row (fresh)
-- but touched none fails with SQLSTATE PS001 so the worker can classify it.
-- The message names no values: it ends up in dead-letter headers.
CREATE FUNCTION pgscribe.expect_rows(fresh bigint, affected bigint) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    IF fresh > 0 AND affected = 0 THEN
        RAISE EXCEPTION 'row not found or version mismatch' USING ERRCODE = 'PS001';
    END IF;
    RETURN fresh::int;
END;
$$;
