-- The write audit once per transaction (docs/audit.md): each command
-- statement used to call audit.append_writes from a CTE of its own, so a
-- transaction of ~18 statement shapes took its clinic's chain head, read
-- it, inserted into audit.events and updated it ~18 times. The worker now
-- ends each transaction, before COMMIT, with ONE call of this function over
-- every command of the transaction: a command is fresh (applied by this
-- transaction, not a duplicate) when its idempotency record was inserted
-- by this transaction (its xmin is the transaction's id; the worker uses no
-- savepoints), a repeated command id counts once (the first), and the rows
-- are chained in (partition, offset) order under one head update.
-- audit.append_writes stays for workers of the statement-level audit.
CREATE FUNCTION audit.append_transaction_writes(
    p_command_ids uuid[], p_actors text[], p_issued_ms bigint[], p_row_keys text[],
    p_columns text[], p_partitions int[], p_offsets bigint[], p_traceparents text[],
    p_entities text[], p_actions text[], p_topic text)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_rows audit.events[];
    v_xid xid := pg_current_xact_id()::xid;
BEGIN
    IF p_command_ids IS NULL OR cardinality(p_command_ids) = 0 THEN
        RETURN 0;
    END IF;
    WITH input AS (
        SELECT * FROM unnest(p_command_ids, p_actors, p_issued_ms, p_row_keys, p_columns,
                             p_partitions, p_offsets, p_traceparents, p_entities, p_actions)
            WITH ORDINALITY AS u(c, a, ms, k, cols, kpart, koff, tr, ent, act, ord)),
    uniq AS (SELECT DISTINCT ON (c) * FROM input ORDER BY c, ord)
    SELECT array_agg(ROW(current_setting('pgscribe.clinic_id', true), NULL, 'write', NULL, u.c,
                         timestamptz 'epoch' + coalesce(u.ms, 0) * interval '1 millisecond',
                         NULL, u.a, u.act, u.ent, u.k::jsonb::text, u.cols::text[], NULL, NULL,
                         NULL, NULL, NULL, NULL, p_topic, u.kpart, u.koff, u.tr, NULL,
                         NULL)::audit.events
                     ORDER BY u.kpart, u.koff, u.ord)
      INTO v_rows
      FROM uniq u
     -- one primary-key lookup per command: a scalar subquery is never turned
     -- into a join, which a generic plan (unknown array sizes) would make a
     -- hash join over the whole table, once per transaction
     WHERE (SELECT a.xmin = v_xid FROM pgscribe.applied_commands a WHERE a.command_id = u.c);
    RETURN audit.chain(v_rows);
END
$$;

REVOKE ALL ON FUNCTION audit.append_transaction_writes(uuid[], text[], bigint[], text[], text[],
    int[], bigint[], text[], text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.append_transaction_writes(uuid[], text[], bigint[], text[],
    text[], int[], bigint[], text[], text[], text[], text) TO pgscribe_worker;
