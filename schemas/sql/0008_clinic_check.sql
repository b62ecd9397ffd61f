-- The tenant wall, checked a second time in SQL: a multi-row statement
-- carries each row's clinic and passes it through pgscribe.expect_clinic,
-- which refuses a row of another clinic than the transaction's
-- (set_config('pgscribe.clinic_id', ...) at BEGIN). The worker never builds
-- such a batch; should it ever, the statement fails instead of writing one
-- clinic's row under another's name.
CREATE FUNCTION pgscribe.expect_clinic(row_clinic text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF row_clinic IS DISTINCT FROM current_setting('pgscribe.clinic_id', true) THEN
        RAISE EXCEPTION 'a row of another clinic than the transaction''s'
            USING ERRCODE = 'PS003';
    END IF;
    RETURN row_clinic;
END;
$$;

REVOKE ALL ON FUNCTION pgscribe.expect_clinic(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.expect_clinic(text) TO pgscribe_worker;
