-- Resume floors for the audit stream (docs/dr.md): migration 0015 gave every
-- idempotency record of a command its partition's resume floor, but the
-- audit stream's rewind still started after the highest recorded source
-- offset, which skips an event whose transaction committed after a later
-- event's of its partition and was lost with it (a point-in-time restore or
-- a promoted asynchronous standby). Each event id now records where it came
-- from and its partition's floor when its transaction began, from the same
-- pgscribe.resume_floors setting (honoured only on the database the worker
-- checked, resume_floors_checked), and recorded_position takes the highest
-- floor of either stream.
ALTER TABLE audit.event_ids
    ADD COLUMN source_topic text,
    ADD COLUMN source_partition int,
    ADD COLUMN resume_floor bigint;
CREATE INDEX event_ids_resume_floor
    ON audit.event_ids (source_topic, source_partition, resume_floor)
    WHERE resume_floor IS NOT NULL;

CREATE FUNCTION audit.set_event_resume_floor() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.resume_floor IS NULL AND NEW.source_partition IS NOT NULL THEN
        NEW.resume_floor := substring(current_setting('pgscribe.resume_floors', true)
                                      FROM ',' || NEW.source_partition || ':([0-9]+),')::bigint;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER event_ids_resume_floor
    BEFORE INSERT ON audit.event_ids
    FOR EACH ROW EXECUTE FUNCTION audit.set_event_resume_floor();

-- As in 0010, the event ids now with their source.
CREATE OR REPLACE FUNCTION audit.append_events(
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
    new AS (INSERT INTO audit.event_ids (event_id, clinic_id, source_topic, source_partition)
            SELECT event_id, clinic, p_topic, kpart FROM uniq ON CONFLICT DO NOTHING
            RETURNING event_id)
    SELECT array_agg(ROW(f.clinic, NULL, 'event', f.event_id, NULL,
                         timestamptz 'epoch' + f.ms * interval '1 millisecond', NULL, f.actor,
                         f.action, f.rtype, f.rid, NULL, f.outcome, f.recipient, f.purpose,
                         f.description, f.source, f.details::text, p_topic, f.kpart, f.koff,
                         f.trace, NULL, NULL)::audit.events ORDER BY f.kpart, f.koff, f.ord)
      INTO v_rows FROM uniq f JOIN new USING (event_id);
    RETURN audit.chain(v_rows);
END
$$;

-- The highest offset of p_topic/p_partition below which the database holds
-- every final message, NULL when it cannot tell: the greatest resume floor
-- of either stream and the checkpoint, less one; without any (records from
-- before 0015 and 0017), the highest recorded offset.
CREATE OR REPLACE FUNCTION pgscribe.recorded_position(p_topic text, p_partition int)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        greatest(
            (SELECT max(resume_floor) - 1 FROM pgscribe.applied_commands
              WHERE topic = p_topic AND kafka_partition = p_partition
                AND resume_floor IS NOT NULL),
            (SELECT max(resume_floor) - 1 FROM audit.event_ids
              WHERE source_topic = p_topic AND source_partition = p_partition
                AND resume_floor IS NOT NULL),
            (SELECT next_offset - 1 FROM pgscribe.resume_checkpoints
              WHERE topic = p_topic AND kafka_partition = p_partition)),
        greatest(
            (SELECT max(kafka_offset) FROM pgscribe.applied_commands
              WHERE topic = p_topic AND kafka_partition = p_partition),
            (SELECT max(source_offset) FROM audit.events
              WHERE kind = 'event' AND source_topic = p_topic
                AND source_partition = p_partition)))
$$;
