-- Rewind after a restore (docs/operations.md#rewind-after-a-restore): on each
-- partition assignment the worker asks the database for the highest Kafka
-- offset it still records as applied and rewinds a committed offset past it.

-- One indexed lookup per partition: the highest recorded offset of a
-- (topic, partition) among the idempotency records ...
CREATE INDEX applied_commands_position
    ON pgscribe.applied_commands (topic, kafka_partition, kafka_offset);
-- ... and among the chained AuditEvents (kind 'event') of the audit stream.
CREATE INDEX events_source_position
    ON audit.events (source_topic, source_partition, source_offset)
    WHERE kind = 'event';

-- The highest offset of p_topic/p_partition the database records: the
-- greater of applied_commands and audit.events, NULL when it records none.
-- SECURITY DEFINER: the worker role keeps SELECT (command_id) only on
-- applied_commands and no SELECT on audit.events; it learns offsets, never
-- a value.
CREATE FUNCTION pgscribe.recorded_position(p_topic text, p_partition int)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(
        (SELECT max(kafka_offset) FROM pgscribe.applied_commands
          WHERE topic = p_topic AND kafka_partition = p_partition),
        (SELECT max(source_offset) FROM audit.events
          WHERE kind = 'event' AND source_topic = p_topic
            AND source_partition = p_partition))
$$;

-- The database's identity: the cluster's system identifier and the
-- timeline of its last checkpoint (a promotion or point-in-time recovery
-- starts a new timeline). Logged with every rewind check; pg_control_*
-- are not executable by PUBLIC, hence SECURITY DEFINER.
CREATE FUNCTION pgscribe.db_identity(OUT system_identifier bigint, OUT timeline int)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.system_identifier, c.timeline_id
      FROM pg_control_system() s, pg_control_checkpoint() c
$$;

REVOKE ALL ON FUNCTION pgscribe.recorded_position(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgscribe.db_identity() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.recorded_position(text, int) TO pgscribe_worker;
GRANT EXECUTE ON FUNCTION pgscribe.db_identity() TO pgscribe_worker;
