-- The tenant wall of a multi-row statement, checked once per statement
-- instead of once per row: pgscribe.expect_clinic(row_clinic) was a plpgsql
-- call for every row of every multi-row statement. expect_clinics takes the
-- statement's array of each row's clinic and the clinic the statement writes
-- under; its arguments are bind parameters only, so PostgreSQL evaluates it
-- once, as a one-time filter, before the first row. It raises PS003 when any
-- row, or the statement's clinic, is not the transaction's
-- (set_config('pgscribe.clinic_id', ...) at BEGIN), and returns true.
CREATE FUNCTION pgscribe.expect_clinics(row_clinics text[], statement_clinic text)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_clinic text := current_setting('pgscribe.clinic_id', true);
BEGIN
    -- one expression, no query: NULL anywhere (a row, the array, the
    -- setting) is not TRUE, so it is refused as well
    IF statement_clinic IS DISTINCT FROM v_clinic OR (v_clinic = ALL (row_clinics)) IS NOT TRUE THEN
        RAISE EXCEPTION 'a row of another clinic than the transaction''s'
            USING ERRCODE = 'PS003';
    END IF;
    RETURN true;
END;
$$;

REVOKE ALL ON FUNCTION pgscribe.expect_clinics(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.expect_clinics(text[], text) TO pgscribe_worker;
