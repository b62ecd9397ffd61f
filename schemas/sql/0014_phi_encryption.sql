-- Field encryption of PHI columns (docs/keys.md). A column marked is_phi in
-- pgscribe.column_policy stays in clear until `pgscribe keys protect`
-- converts it: the column becomes bytea holding AES-256-GCM envelopes
-- (src/common/fieldcrypt.h), column_policy.encrypted turns true and
-- plain_type keeps the column's clear type, which readers cast the
-- decrypted text back to. The worker seals a command's values for such a
-- column at intake; it gains no privilege here.

-- format_type() text of the clear type (schema-qualified); NULL while the
-- column is in clear.
ALTER TABLE pgscribe.column_policy ADD COLUMN plain_type text;
ALTER TABLE pgscribe.column_policy
    ADD CONSTRAINT column_policy_encrypted_has_type CHECK (NOT encrypted OR plain_type IS NOT NULL);

-- The key id an envelope names (bytes 1..4, big-endian), NULL for a value
-- that is not an envelope (a column still in clear, a NULL).
CREATE FUNCTION pgscribe.envelope_key_id(p_env bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN octet_length(p_env) >= 33 AND get_byte(p_env, 0) = 1
                THEN (get_byte(p_env, 1)::bigint << 24) | (get_byte(p_env, 2)::bigint << 16)
                     | (get_byte(p_env, 3)::bigint << 8) | get_byte(p_env, 4)::bigint
           END
$$;
REVOKE ALL ON FUNCTION pgscribe.envelope_key_id(bytea) FROM PUBLIC;

-- `pgscribe rekey` progress, one row per (table, clinic): the canonical row
-- key of the last row a finished batch re-encrypted, so an interrupted run
-- resumes after it. Re-encryption is idempotent (rows already on the target
-- key are skipped), so the cursor only saves work.
CREATE TABLE pgscribe.rekey_progress (
    schema_name  text NOT NULL,
    table_name   text NOT NULL,
    clinic_id    text NOT NULL,
    target_key   bigint NOT NULL,
    last_row_key text,
    rows_done    bigint NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (schema_name, table_name, clinic_id)
);
REVOKE ALL ON pgscribe.rekey_progress FROM PUBLIC;

-- Readers of decrypted rows (`pgscribe show`): may record that they read.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgscribe_reader') THEN
        CREATE ROLE pgscribe_reader NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END;
$$;

-- A READ event in the clinic's audit trail, chained by audit.chain() as the
-- worker's own rows are: who (the session user and the operator named by
-- the tool), which row (entity, canonical row key) and which columns were
-- shown; never a value. Sets the transaction's clinic (the chain's clinic).
-- Returns the event id.
CREATE FUNCTION pgscribe.record_read(p_clinic text, p_entity text, p_row_key text,
                                     p_columns text[], p_operator text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id uuid := gen_random_uuid();
    v_actor text := session_user::text;
BEGIN
    IF p_clinic IS NULL OR p_clinic = '' OR p_entity IS NULL OR p_entity = '' THEN
        RAISE EXCEPTION 'record_read needs a clinic and an entity' USING ERRCODE = '22023';
    END IF;
    IF p_operator IS NOT NULL AND p_operator <> '' AND p_operator <> v_actor THEN
        v_actor := v_actor || ' (' || p_operator || ')';
    END IF;
    PERFORM set_config('pgscribe.clinic_id', p_clinic, true);
    INSERT INTO audit.event_ids (event_id, clinic_id) VALUES (v_id, p_clinic);
    PERFORM audit.chain(ARRAY[ROW(p_clinic, NULL, 'event', v_id, NULL, clock_timestamp(), NULL,
                                  v_actor, 'READ', p_entity, p_row_key, p_columns, 'success',
                                  NULL, NULL, NULL, 'pgscribe show', NULL, NULL, NULL, NULL,
                                  NULL, NULL, NULL)::audit.events]);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION pgscribe.record_read(text, text, text, text[], text) FROM PUBLIC;
GRANT USAGE ON SCHEMA pgscribe TO pgscribe_reader;
GRANT EXECUTE ON FUNCTION pgscribe.record_read(text, text, text, text[], text) TO pgscribe_reader;
GRANT EXECUTE ON FUNCTION pgscribe.envelope_key_id(bytea) TO pgscribe_reader;
GRANT SELECT ON pgscribe.column_policy TO pgscribe_reader;
DO $$
BEGIN
    IF to_regnamespace('clinic') IS NOT NULL THEN
        GRANT USAGE ON SCHEMA clinic TO pgscribe_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA clinic TO pgscribe_reader;
    END IF;
END;
$$;
