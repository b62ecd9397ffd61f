-- Reused command ids: each idempotency record keeps a digest of what its
-- command writes, so a re-delivery (same digest) is a duplicate and an id
-- reused for other content (another row, other data, another clinic) is
-- refused with SQLSTATE PS002 instead of being dropped as a duplicate.

-- SHA-256 of the command's canonical content (src/catalog/digest.c). NULL
-- for records written before this migration: those still count as
-- duplicates, as they did.
ALTER TABLE pgscribe.applied_commands ADD COLUMN digest bytea;

-- Called by the command statement for a command whose id was already
-- recorded (ON CONFLICT DO NOTHING inserted nothing). p_first is the digest
-- of the first command of the same statement with this id (a multi-row
-- statement holding one id twice), NULL otherwise; then the stored digest
-- is read. SECURITY DEFINER: the worker role keeps SELECT (command_id) only,
-- and learns no more of another clinic's record than "same" or "not same".
-- VOLATILE, so in READ COMMITTED its query takes a snapshot of its own and
-- sees a record that a concurrent transaction committed while ON CONFLICT
-- waited for it; should the record still not be visible (pruned meanwhile),
-- the command is retried (40001), never taken for a reused id.
-- Messages name no values: they end up in logs and dead-letter headers.
CREATE FUNCTION pgscribe.expect_same_command(p_command_id uuid, p_digest bytea, p_first bytea)
RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored bytea;
BEGIN
    IF p_first IS NOT NULL THEN
        stored := p_first;
    ELSE
        SELECT a.digest INTO stored FROM pgscribe.applied_commands a
         WHERE a.command_id = p_command_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'command id recorded by a transaction not yet visible; retry'
                USING ERRCODE = '40001';
        END IF;
        IF stored IS NULL THEN
            RETURN 0; -- recorded before digests existed: a duplicate, as before
        END IF;
    END IF;
    IF p_digest IS NULL OR stored <> p_digest THEN
        RAISE EXCEPTION 'command id already used by a command with other content'
            USING ERRCODE = 'PS002';
    END IF;
    RETURN 0;
END
$$;

REVOKE ALL ON FUNCTION pgscribe.expect_same_command(uuid, bytea, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.expect_same_command(uuid, bytea, bytea) TO pgscribe_worker;
