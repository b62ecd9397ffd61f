-- Multi-row statements (one statement per batch shape per transaction): the
-- check that every fresh command of an UPDATE or DELETE found its row.
CREATE FUNCTION pgscribe.expect_all(fresh bigint, affected bigint) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    -- no values in the message: it ends up in logs and dead-letter headers
    IF affected < fresh THEN
        RAISE EXCEPTION 'row not found or version mismatch'
            USING ERRCODE = 'PS001';
    END IF;
    RETURN fresh::int;
END
$$;

REVOKE ALL ON FUNCTION pgscribe.expect_all(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.expect_all(bigint, bigint) TO pgscribe_worker;
