-- Rewind without loss (docs/dr.md): the position a rewind may start from is
-- no longer the highest recorded offset of a partition, which skips every
-- command that committed after a later one of its partition and was lost
-- with it (up to 50 transactions per worker commit out of offset order).
--
-- Each idempotency record now carries its partition's resume floor: the
-- offset below which every message of the partition was final (committed,
-- a duplicate or dead-lettered) when its transaction began. Those commits
-- are ahead of its own in the WAL, so a database that kept the record kept
-- them too, whatever point in time it was restored or promoted to. The
-- worker passes the floors of a transaction's partitions in the setting
-- pgscribe.resume_floors, with the database identity it last checked; the
-- setting is honoured only on that same database (resume_floors_checked), so
-- a floor learnt on a primary that was lost is never written on its
-- successor.
ALTER TABLE pgscribe.applied_commands ADD COLUMN resume_floor bigint;
CREATE INDEX applied_commands_resume_floor
    ON pgscribe.applied_commands (topic, kafka_partition, resume_floor)
    WHERE resume_floor IS NOT NULL;

-- A clean hand-over (a revocation, a stop) records the committed position
-- of each partition it drained: every offset below next_offset is final in
-- this database. Written only while the database is the one the worker
-- checked; a restart that did not go back then rewinds nothing.
CREATE TABLE pgscribe.resume_checkpoints (
    topic             text   NOT NULL,
    kafka_partition   int    NOT NULL,
    next_offset       bigint NOT NULL,
    system_identifier bigint NOT NULL,
    timeline          int    NOT NULL,
    at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- The database's identity, the timeline now taken from the WAL being
-- written: pg_control_checkpoint() keeps the old timeline after a promotion
-- until the next checkpoint ends, which under load takes seconds.
CREATE OR REPLACE FUNCTION pgscribe.db_identity(OUT system_identifier bigint, OUT timeline int)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.system_identifier,
           CASE WHEN pg_is_in_recovery() THEN c.timeline_id
                ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
           END
      FROM pg_control_system() s, pg_control_checkpoint() c
$$;

-- p_floors = 'SYSID/TIMELINE,P:FLOOR,P:FLOOR,': the floors, if the
-- identity is this database's; '' otherwise.
CREATE FUNCTION pgscribe.resume_floors_checked(p_floors text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN split_part(p_floors, ',', 1) =
                     (SELECT system_identifier::text || '/' || timeline::text
                        FROM pgscribe.db_identity())
                THEN substr(p_floors, length(split_part(p_floors, ',', 1)) + 1)
                ELSE '' END
$$;

CREATE FUNCTION pgscribe.set_resume_floor() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.resume_floor IS NULL THEN
        NEW.resume_floor := substring(current_setting('pgscribe.resume_floors', true)
                                      FROM ',' || NEW.kafka_partition || ':([0-9]+),')::bigint;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER applied_commands_resume_floor
    BEFORE INSERT ON pgscribe.applied_commands
    FOR EACH ROW EXECUTE FUNCTION pgscribe.set_resume_floor();

-- p_identity = 'SYSID/TIMELINE'; true if recorded (same database).
CREATE FUNCTION pgscribe.resume_checkpoint(p_topic text, p_partition int, p_next bigint,
                                           p_identity text)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH id AS (SELECT system_identifier, timeline FROM pgscribe.db_identity()
                 WHERE system_identifier::text || '/' || timeline::text = p_identity),
    up AS (
        INSERT INTO pgscribe.resume_checkpoints AS r
               (topic, kafka_partition, next_offset, system_identifier, timeline)
        SELECT p_topic, p_partition, p_next, system_identifier, timeline FROM id
        ON CONFLICT (topic, kafka_partition) DO UPDATE
           SET next_offset = EXCLUDED.next_offset,
               system_identifier = EXCLUDED.system_identifier,
               timeline = EXCLUDED.timeline, at = now()
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM up)
$$;

-- The highest offset of p_topic/p_partition below which the database holds
-- every final message, NULL when it cannot tell: for the commands, the
-- greater of the highest resume floor and the checkpoint, less one; records
-- without a floor (written before this migration) fall back to the highest
-- recorded offset. The audit stream keeps the highest recorded offset.
CREATE OR REPLACE FUNCTION pgscribe.recorded_position(p_topic text, p_partition int)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(
        coalesce(
            greatest(
                (SELECT max(resume_floor) - 1 FROM pgscribe.applied_commands
                  WHERE topic = p_topic AND kafka_partition = p_partition
                    AND resume_floor IS NOT NULL),
                (SELECT next_offset - 1 FROM pgscribe.resume_checkpoints
                  WHERE topic = p_topic AND kafka_partition = p_partition)),
            (SELECT max(kafka_offset) FROM pgscribe.applied_commands
              WHERE topic = p_topic AND kafka_partition = p_partition)),
        (SELECT max(source_offset) FROM audit.events
          WHERE kind = 'event' AND source_topic = p_topic
            AND source_partition = p_partition))
$$;

REVOKE ALL ON FUNCTION pgscribe.resume_floors_checked(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgscribe.resume_checkpoint(text, int, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.resume_floors_checked(text) TO pgscribe_worker;
GRANT EXECUTE ON FUNCTION pgscribe.resume_checkpoint(text, int, bigint, text) TO pgscribe_worker;
