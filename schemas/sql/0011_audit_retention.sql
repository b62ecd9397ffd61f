-- Audit retention (docs/audit.md, "Retention and archives"): `pgscribe audit
-- archive` writes a month of audit.events to a verified archive, then, as
-- pgscribe_audit_retention, retires the partition through
-- audit.retire_partition(): the last link of each clinic in that month is
-- kept in audit.archived_boundaries, the month's event ids are deleted and the
-- partition is detached and dropped, in one transaction. `pgscribe audit
-- verify` then accepts a chain whose first remaining row links to the
-- archived boundary.

-- One row per clinic and archived month: the last link the month held.
CREATE TABLE audit.archived_boundaries (
    clinic_id       text NOT NULL,
    seq             bigint NOT NULL,
    hash            bytea NOT NULL,
    partition       text NOT NULL,
    manifest_sha256 bytea NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, seq)
);

-- Retires one ended month once its archive is verified: refuses unless
-- pgscribe.audit_retention is on and the partition still holds exactly
-- p_rows rows (the archive's count); records each clinic's last link of the
-- month with the manifest's SHA-256; deletes the month's event ids; detaches
-- and drops the partition (audit.drop_partition). Returns the boundaries
-- recorded.
CREATE FUNCTION audit.retire_partition(p_partition regclass, p_rows bigint, p_manifest_sha256 bytea)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    made int;
BEGIN
    IF current_setting('pgscribe.audit_retention', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'set pgscribe.audit_retention = on first' USING ERRCODE = 'PS004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                    WHERE inhrelid = p_partition AND inhparent = 'audit.events'::regclass) THEN
        RAISE EXCEPTION '% is not a partition of audit.events', p_partition USING ERRCODE = 'PS004';
    END IF;
    IF p_manifest_sha256 IS NULL OR octet_length(p_manifest_sha256) <> 32 THEN
        RAISE EXCEPTION 'a manifest SHA-256 is 32 bytes' USING ERRCODE = 'PS004';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_partition);
    EXECUTE format('SELECT count(*) FROM %s', p_partition) INTO n;
    IF n IS DISTINCT FROM p_rows THEN
        RAISE EXCEPTION '% holds % rows, its archive %', p_partition, n, p_rows
            USING ERRCODE = 'PS004';
    END IF;
    EXECUTE format('INSERT INTO audit.archived_boundaries (clinic_id, seq, hash, partition,'
                   ' manifest_sha256) SELECT DISTINCT ON (clinic_id) clinic_id, seq, hash, %L, $1'
                   ' FROM %s ORDER BY clinic_id, seq DESC', p_partition::text, p_partition)
        USING p_manifest_sha256;
    GET DIAGNOSTICS made = ROW_COUNT;
    EXECUTE format('DELETE FROM audit.event_ids i USING %s e WHERE e.event_id = i.event_id',
                   p_partition);
    PERFORM audit.drop_partition(p_partition);
    RETURN made;
END
$$;

REVOKE ALL ON TABLE audit.archived_boundaries FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.retire_partition(regclass, bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.retire_partition(regclass, bigint, bytea) TO pgscribe_audit_retention;
