-- The audit trail: one append-only, monthly-partitioned table audit.events
-- holding both the AuditEvents of topic.audit (kind 'event') and one row per
-- applied command (kind 'write'), chained per clinic by SHA-256. It replaces
-- pgscribe.audit_events and pgscribe.write_audit, whose rows it takes over.
-- The canonical encoding and the chain are specified in docs/audit.md; the C
-- verifier (src/command/audit_verify.c) and docs/audit_verify.py recompute
-- them from that text alone.

-- octet_length(text) is then the UTF-8 length the canonical encoding needs.
DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'the audit trail needs a UTF8 database (server_encoding is %)',
            current_setting('server_encoding');
    END IF;
END;
$$;

CREATE SCHEMA audit;

-- Column order is part of the row type audit.chain() takes; the canonical
-- encoding's field order is the same minus prev_hash and hash.
CREATE TABLE audit.events (
    clinic_id        text NOT NULL,
    seq              bigint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('event', 'write')),
    event_id         uuid,
    command_id       uuid,
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    actor            text NOT NULL,
    action           text NOT NULL,
    entity           text NOT NULL,
    row_key          text,
    columns          text[],
    outcome          text,
    recipient        text,
    purpose          text,
    description      text,
    source           text,
    details          text,
    source_topic     text,
    source_partition int,
    source_offset    bigint,
    traceparent      text,
    prev_hash        bytea NOT NULL,
    hash             bytea NOT NULL,
    CHECK ((kind = 'event') = (event_id IS NOT NULL)),
    CHECK ((kind = 'write') = (command_id IS NOT NULL))
) PARTITION BY RANGE (recorded_at);

CREATE UNIQUE INDEX events_clinic_seq ON audit.events (clinic_id, seq, recorded_at);
CREATE INDEX events_clinic_time ON audit.events (clinic_id, recorded_at);

-- An AuditEvent is chained at most once, whatever partition holds it: the
-- event ids live in one unpartitioned table.
CREATE TABLE audit.event_ids (
    event_id    uuid PRIMARY KEY,
    clinic_id   text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Each clinic's last link. Advanced in the transaction that appends, under
-- the row lock that serialises the clinic's appends.
CREATE TABLE audit.chain_heads (
    clinic_id   text PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    recorded_at timestamptz NOT NULL
);

-- ---- canonical encoding ---------------------------------------------------

-- The row's canonical bytes (docs/audit.md, "Canonical encoding"): every
-- column but prev_hash and hash, in table order, each field as a 4-byte
-- big-endian length and its UTF-8 bytes (NULL: ffffffff); numbers and uuids
-- as their text; timestamps as int64 microseconds since the Unix epoch in
-- decimal; columns as a 4-byte count and each element as a field. One plpgsql
-- expression: SQL helper functions per field cost ten times as much, since
-- the planner does not inline a function that names its argument twice.
CREATE FUNCTION audit.canonical(e audit.events) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    nul constant bytea := '\xffffffff';
    cols bytea := nul;
    x text;
BEGIN
    IF e.columns IS NOT NULL THEN
        cols := int4send(coalesce(cardinality(e.columns), 0));
        FOREACH x IN ARRAY e.columns LOOP
            cols := cols || coalesce(int4send(octet_length(x)) || convert_to(x, 'UTF8'), nul);
        END LOOP;
    END IF;
    RETURN coalesce(int4send(octet_length(e.clinic_id)) || convert_to(e.clinic_id, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.seq::text)) || convert_to(e.seq::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.kind)) || convert_to(e.kind, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.event_id::text)) || convert_to(e.event_id::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.command_id::text)) || convert_to(e.command_id::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length((extract(epoch FROM e.occurred_at) * 1000000)::bigint::text)) || convert_to((extract(epoch FROM e.occurred_at) * 1000000)::bigint::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length((extract(epoch FROM e.recorded_at) * 1000000)::bigint::text)) || convert_to((extract(epoch FROM e.recorded_at) * 1000000)::bigint::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.actor)) || convert_to(e.actor, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.action)) || convert_to(e.action, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.entity)) || convert_to(e.entity, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.row_key)) || convert_to(e.row_key, 'UTF8'), nul)
        || cols
        || coalesce(int4send(octet_length(e.outcome)) || convert_to(e.outcome, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.recipient)) || convert_to(e.recipient, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.purpose)) || convert_to(e.purpose, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.description)) || convert_to(e.description, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.source)) || convert_to(e.source, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.details)) || convert_to(e.details, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.source_topic)) || convert_to(e.source_topic, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.source_partition::text)) || convert_to(e.source_partition::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.source_offset::text)) || convert_to(e.source_offset::text, 'UTF8'), nul)
        || coalesce(int4send(octet_length(e.traceparent)) || convert_to(e.traceparent, 'UTF8'), nul);
END
$$;

-- ---- partitions -------------------------------------------------------------

-- Partitions are months in UTC, named audit.events_YYYY_MM. Creates the
-- current month's and the next months_ahead months' (idempotent); returns how
-- many it created. There is no DEFAULT partition: a row whose month has none
-- fails with 23514, which the worker retries (transient) until one exists.
CREATE FUNCTION audit.ensure_partitions(months_ahead int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m0 timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    lo timestamp;
    name text;
    made int := 0;
BEGIN
    FOR i IN 0..greatest(months_ahead, 0) LOOP
        lo := m0 + make_interval(months => i);
        name := 'events_' || to_char(lo, 'YYYY_MM');
        IF to_regclass('audit.' || name) IS NULL THEN
            EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events'
                           ' FOR VALUES FROM (%L) TO (%L)', name,
                           (lo AT TIME ZONE 'UTC'),
                           ((lo + interval '1 month') AT TIME ZONE 'UTC'));
            -- TRUNCATE of a partition fires only the partition's own triggers
            EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.%I'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', name);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

-- ---- append-only --------------------------------------------------------------

-- Retention (a later command) removes whole months only: as
-- pgscribe_audit_retention, with SET LOCAL pgscribe.audit_retention = 'on',
-- through audit.drop_partition(). Nothing updates a row, ever.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgscribe_audit_retention') THEN
        CREATE ROLE pgscribe_audit_retention NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END;
$$;

-- Refuses UPDATE, DELETE and TRUNCATE for every role, the owner included
-- (SQLSTATE PS004). DELETE and TRUNCATE pass only for the retention path.
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' AND current_setting('pgscribe.audit_retention', true) = 'on'
       AND pg_has_role(current_user, 'pgscribe_audit_retention', 'MEMBER') THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'audit.events is append-only: % refused', TG_OP USING ERRCODE = 'PS004';
END
$$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- The retention role's one capability: detach and drop a month that has
-- ended. The chain heads stay; a verification after it starts at the first
-- remaining row, whose prev_hash is the trusted boundary.
CREATE FUNCTION audit.drop_partition(p_partition regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    upper_bound timestamptz;
BEGIN
    IF current_setting('pgscribe.audit_retention', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'set pgscribe.audit_retention = on first' USING ERRCODE = 'PS004';
    END IF;
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
      INTO upper_bound
      FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
     WHERE c.oid = p_partition AND i.inhparent = 'audit.events'::regclass;
    IF upper_bound IS NULL OR upper_bound > now() THEN
        RAISE EXCEPTION 'not an ended month of audit.events' USING ERRCODE = 'PS004';
    END IF;
    EXECUTE format('ALTER TABLE audit.events DETACH PARTITION %s', p_partition);
    EXECUTE format('DROP TABLE %s', p_partition);
END
$$;

-- ---- the chain --------------------------------------------------------------

-- Locks the transaction's clinic's head (pgscribe.clinic_id), creating it at
-- seq 0 on first use. The worker calls it first in every transaction, so a
-- transaction's first lock is its one head lock: clinics chain concurrently,
-- one clinic's transactions queue on its head, and no lock order can invert.
CREATE FUNCTION audit.lock_head() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_clinic text := current_setting('pgscribe.clinic_id', true);
    v_seq bigint;
BEGIN
    IF v_clinic IS NULL OR v_clinic = '' THEN
        RAISE EXCEPTION 'no clinic set for this transaction' USING ERRCODE = 'PS003';
    END IF;
    SELECT h.seq INTO v_seq FROM audit.chain_heads h WHERE h.clinic_id = v_clinic FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit.chain_heads VALUES (v_clinic, 0, decode(repeat('00', 32), 'hex'), '-infinity')
            ON CONFLICT DO NOTHING;
        SELECT h.seq INTO v_seq FROM audit.chain_heads h WHERE h.clinic_id = v_clinic FOR UPDATE;
    END IF;
    RETURN v_seq;
END
$$;

-- Appends p_rows, in array order, to the transaction's clinic's chain: one
-- head lock, seq from head.seq + 1, one recorded_at (taken after the lock,
-- never before the head's, so recorded_at grows with seq), prev_hash and
-- hash = sha256(prev_hash || canonical(row)); one INSERT; the head advances.
-- A row of another clinic raises PS003. Returns the rows appended.
CREATE FUNCTION audit.chain(p_rows audit.events[]) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_clinic text := current_setting('pgscribe.clinic_id', true);
    v_seq bigint;
    v_hash bytea;
    v_at timestamptz;
    r audit.events;
    v_out audit.events[] := '{}';
BEGIN
    IF p_rows IS NULL OR cardinality(p_rows) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM audit.lock_head();
    SELECT h.seq, h.hash, greatest(clock_timestamp(), h.recorded_at)
      INTO v_seq, v_hash, v_at FROM audit.chain_heads h WHERE h.clinic_id = v_clinic;
    FOREACH r IN ARRAY p_rows LOOP
        IF r.clinic_id IS DISTINCT FROM v_clinic THEN
            RAISE EXCEPTION 'a row of another clinic than the transaction''s' USING ERRCODE = 'PS003';
        END IF;
        v_seq := v_seq + 1;
        r.seq := v_seq;
        r.recorded_at := v_at;
        r.prev_hash := v_hash;
        v_hash := sha256(v_hash || audit.canonical(r));
        r.hash := v_hash;
        v_out := v_out || r;
    END LOOP;
    INSERT INTO audit.events SELECT * FROM unnest(v_out);
    UPDATE audit.chain_heads SET seq = v_seq, hash = v_hash, recorded_at = v_at
     WHERE clinic_id = v_clinic;
    RETURN cardinality(v_out);
END
$$;

-- AuditEvents of one clinic (the audit statement, src/sql/auditsql.c): each
-- event id at most once (audit.event_ids), chained in (partition, offset)
-- order. Returns the events appended; a redelivered one is not chained again.
CREATE FUNCTION audit.append_events(
    p_clinics text[], p_event_ids uuid[], p_actors text[], p_actions text[],
    p_resource_types text[], p_resource_ids text[], p_outcomes text[], p_occurred_ms bigint[],
    p_sources text[], p_details jsonb[], p_partitions int[], p_offsets bigint[], p_topic text,
    p_recipients text[], p_purposes text[], p_descriptions text[], p_traceparents text[])
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_rows audit.events[];
BEGIN
    WITH input AS (
        SELECT * FROM unnest(p_clinics, p_event_ids, p_actors, p_actions, p_resource_types,
                             p_resource_ids, p_outcomes, p_occurred_ms, p_sources, p_details,
                             p_partitions, p_offsets, p_recipients, p_purposes, p_descriptions,
                             p_traceparents)
            WITH ORDINALITY AS u(clinic, event_id, actor, action, rtype, rid, outcome, ms,
                                 source, details, kpart, koff, recipient, purpose, description,
                                 trace, ord)),
    uniq AS (SELECT DISTINCT ON (event_id) * FROM input ORDER BY event_id, ord),
    new AS (INSERT INTO audit.event_ids (event_id, clinic_id)
            SELECT event_id, clinic FROM uniq ON CONFLICT DO NOTHING RETURNING event_id)
    SELECT array_agg(ROW(f.clinic, NULL, 'event', f.event_id, NULL,
                         timestamptz 'epoch' + f.ms * interval '1 millisecond', NULL, f.actor,
                         f.action, f.rtype, f.rid, NULL, f.outcome, f.recipient, f.purpose,
                         f.description, f.source, f.details::text, p_topic, f.kpart, f.koff,
                         f.trace, NULL, NULL)::audit.events ORDER BY f.kpart, f.koff, f.ord)
      INTO v_rows FROM uniq f JOIN new USING (event_id);
    RETURN audit.chain(v_rows);
END
$$;

-- Write audits of one statement's fresh commands (src/sql/sqlenvelope.c):
-- one row each, chained in (partition, offset) order. p_columns holds, per
-- command, the text of a text[] literal: the NAMES of the columns written.
CREATE FUNCTION audit.append_writes(
    p_command_ids uuid[], p_actors text[], p_issued_ms bigint[], p_row_keys text[],
    p_columns text[], p_partitions int[], p_offsets bigint[], p_traceparents text[],
    p_entity text, p_action text, p_topic text)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_rows audit.events[];
BEGIN
    IF p_command_ids IS NULL THEN
        RETURN 0;
    END IF;
    SELECT array_agg(ROW(current_setting('pgscribe.clinic_id', true), NULL, 'write', NULL, c,
                         timestamptz 'epoch' + coalesce(ms, 0) * interval '1 millisecond', NULL,
                         a, p_action, p_entity, k, cols::text[], NULL, NULL, NULL, NULL, NULL,
                         NULL, p_topic, kpart, koff, tr, NULL, NULL)::audit.events
                     ORDER BY kpart, koff, ord)
      INTO v_rows
      FROM unnest(p_command_ids, p_actors, p_issued_ms, p_row_keys, p_columns, p_partitions,
                  p_offsets, p_traceparents) WITH ORDINALITY AS u(c, a, ms, k, cols, kpart, koff, tr, ord);
    RETURN audit.chain(v_rows);
END
$$;

SELECT audit.ensure_partitions(3);

-- ---- today's rows move in ---------------------------------------------------

-- Each clinic's old audit events and write audits, in (time, id) order, become
-- the start of its chain; recorded_at is the time of this migration.
DO $$
DECLARE
    c text;
    v_rows audit.events[];
BEGIN
    FOR c IN SELECT clinic_id FROM pgscribe.audit_events
             UNION SELECT clinic_id FROM pgscribe.write_audit ORDER BY 1 LOOP
        PERFORM set_config('pgscribe.clinic_id', c, true);
        SELECT array_agg(r ORDER BY t, tie) INTO v_rows FROM (
            SELECT ROW(e.clinic_id, NULL, 'event', e.event_id, NULL, e.occurred_at, NULL,
                       e.actor, e.action, e.resource_type, e.resource_id, NULL, e.outcome,
                       NULL, NULL, NULL, e.source, e.details::text, e.kafka_topic,
                       e.kafka_partition, e.kafka_offset, NULL, NULL, NULL)::audit.events AS r,
                   e.received_at AS t, e.event_id::text AS tie
              FROM pgscribe.audit_events e WHERE e.clinic_id = c
            UNION ALL
            SELECT ROW(w.clinic_id, NULL, 'write', NULL, w.command_id, w.applied_at, NULL,
                       w.actor, w.op, w.entity, w.row_key::text, NULL, NULL, NULL, NULL, NULL,
                       NULL, NULL, a.topic, a.kafka_partition, a.kafka_offset, NULL, NULL,
                       NULL)::audit.events,
                   w.applied_at, lpad(w.id::text, 20, '0')
              FROM pgscribe.write_audit w
              LEFT JOIN pgscribe.applied_commands a ON a.command_id = w.command_id
             WHERE w.clinic_id = c) s;
        PERFORM audit.chain(v_rows);
        INSERT INTO audit.event_ids (event_id, clinic_id)
            SELECT event_id, clinic_id FROM pgscribe.audit_events WHERE clinic_id = c;
    END LOOP;
    PERFORM set_config('pgscribe.clinic_id', '', true);
END;
$$;

DROP TABLE pgscribe.audit_events;
DROP TABLE pgscribe.write_audit;

-- ---- privileges ---------------------------------------------------------------

-- The worker appends only, through the two append functions, and reads
-- nothing: no privilege on any audit table (so no UPDATE, DELETE, TRUNCATE,
-- nor SELECT of any clinic's rows).
REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO pgscribe_worker;
GRANT EXECUTE ON FUNCTION audit.lock_head() TO pgscribe_worker;
GRANT EXECUTE ON FUNCTION audit.append_events(text[], uuid[], text[], text[], text[], text[],
    text[], bigint[], text[], jsonb[], int[], bigint[], text, text[], text[], text[], text[])
    TO pgscribe_worker;
GRANT EXECUTE ON FUNCTION audit.append_writes(uuid[], text[], bigint[], text[], text[], int[],
    bigint[], text[], text, text, text) TO pgscribe_worker;
GRANT USAGE ON SCHEMA audit TO pgscribe_audit_retention;
GRANT EXECUTE ON FUNCTION audit.drop_partition(regclass) TO pgscribe_audit_retention;
-- The trigger function runs as whoever changes rows; it only reads settings.
GRANT EXECUTE ON FUNCTION audit.refuse_change() TO PUBLIC;
