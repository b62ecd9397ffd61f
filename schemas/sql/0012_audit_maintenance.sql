-- Audit maintenance and reporting (docs/audit.md, "Maintenance" and
-- "Activity views"): the worker's maintenance loop creates future months'
-- partitions and refreshes three materialized activity views through two
-- SECURITY DEFINER functions, its only new privileges. The views are read by
-- pgscribe_auditor (NOLOGIN), a role granted to reporting and audit logins;
-- the worker reads none of them.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgscribe_auditor') THEN
        CREATE ROLE pgscribe_auditor NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END;
$$;

-- ---- activity views ---------------------------------------------------------

-- Days are UTC days of recorded_at (the partition key). Each view has a
-- unique index on its grouping columns, so REFRESH ... CONCURRENTLY works and
-- readers are never blocked by a refresh.

-- Write audits: per clinic, day, entity and operation.
CREATE MATERIALIZED VIEW audit.activity_writes AS
SELECT clinic_id, (recorded_at AT TIME ZONE 'UTC')::date AS day, entity, action AS op,
       count(*) AS writes
  FROM audit.events
 WHERE kind = 'write'
 GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX activity_writes_key ON audit.activity_writes (clinic_id, day, entity, op);

-- AuditEvents: per clinic, day, action and outcome ('' when it had none).
CREATE MATERIALIZED VIEW audit.activity_actions AS
SELECT clinic_id, (recorded_at AT TIME ZONE 'UTC')::date AS day, action,
       coalesce(outcome, '') AS outcome, count(*) AS events
  FROM audit.events
 WHERE kind = 'event'
 GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX activity_actions_key ON audit.activity_actions (clinic_id, day, action, outcome);

-- Disclosures (action DISCLOSE): per clinic and day, how many and to whom.
CREATE MATERIALIZED VIEW audit.activity_disclosures AS
SELECT clinic_id, (recorded_at AT TIME ZONE 'UTC')::date AS day, count(*) AS disclosures,
       count(DISTINCT recipient) AS recipient_count,
       array_agg(DISTINCT recipient ORDER BY recipient) FILTER (WHERE recipient IS NOT NULL)
           AS recipients
  FROM audit.events
 WHERE kind = 'event' AND action = 'DISCLOSE'
 GROUP BY 1, 2;
CREATE UNIQUE INDEX activity_disclosures_key ON audit.activity_disclosures (clinic_id, day);

-- ---- maintenance functions ----------------------------------------------------

-- The maintenance loop's partition step: audit.ensure_partitions with the
-- months ahead bounded, so the worker role cannot create tables at will.
CREATE FUNCTION audit.maintain_partitions(months_ahead int) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be 0..24' USING ERRCODE = '22023';
    END IF;
    RETURN audit.ensure_partitions(months_ahead);
END
$$;

-- The maintenance loop's view step: refreshes the three views concurrently
-- (readers keep the old contents until each refresh commits). Returns how many.
CREATE FUNCTION audit.refresh_activity() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY audit.activity_writes;
    REFRESH MATERIALIZED VIEW CONCURRENTLY audit.activity_actions;
    REFRESH MATERIALIZED VIEW CONCURRENTLY audit.activity_disclosures;
    RETURN 3;
END
$$;

-- ---- privileges ---------------------------------------------------------------

REVOKE ALL ON audit.activity_writes, audit.activity_actions, audit.activity_disclosures FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.maintain_partitions(int), audit.refresh_activity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.maintain_partitions(int), audit.refresh_activity() TO pgscribe_worker;

-- The auditor reads the views, and the trail itself for verify, anchor and
-- export; it changes nothing.
GRANT USAGE ON SCHEMA audit TO pgscribe_auditor;
GRANT SELECT ON audit.activity_writes, audit.activity_actions, audit.activity_disclosures
    TO pgscribe_auditor;
GRANT SELECT ON audit.events, audit.chain_heads, audit.event_ids, audit.archived_boundaries
    TO pgscribe_auditor; -- verify reads the archived boundaries (0011)
