-- Masked copies (`pgscribe anonymize`, docs/security.md): how each column is
-- rewritten when a clinic is copied out of production.
--   pseudonym  HMAC-SHA-256 under the keyring's pseudonym key: equal inputs
--              give equal outputs, so joins hold; a uuid column gets a uuid
--   year       a date or timestamp truncated to 1 January of its year
--   null       dropped
--   keep       copied unchanged
-- A column without a row here is kept; a PHI column defaults to null.
-- mask_domain ("table.column" of the same schema) names the column whose
-- pseudonyms a reference shares: appointments.patient_id is pseudonymised as
-- patients.id is, so the join of the two still matches. Without it, a column
-- that a foreign key makes reference another uses the referenced column's
-- domain, and any other column its own.
ALTER TABLE pgscribe.column_policy
    ADD COLUMN mask text NOT NULL DEFAULT 'keep'
        CHECK (mask IN ('pseudonym', 'year', 'null', 'keep')),
    ADD COLUMN mask_domain text
        CHECK (mask_domain IS NULL OR mask_domain ~ '^[^.]+\.[^.]+$');

UPDATE pgscribe.column_policy SET mask = 'null' WHERE is_phi;

UPDATE pgscribe.column_policy p SET mask = m.mask
FROM (VALUES
    ('patients', 'mrn', 'pseudonym'), ('patients', 'given_name', 'pseudonym'),
    ('patients', 'family_name', 'pseudonym'), ('patients', 'phone', 'pseudonym'),
    ('patients', 'email', 'pseudonym'), ('patients', 'birth_date', 'year'),
    ('patients', 'sex', 'keep'), ('patients', 'weight_kg', 'keep'),
    ('patients', 'address', 'null'), ('patients', 'notes', 'null'), ('patients', 'photo', 'null'),
    ('appointments', 'reason', 'null'),
    ('encounters', 'diagnosis_code', 'keep'), ('encounters', 'notes', 'null'),
    ('prescriptions', 'drug_code', 'keep'), ('prescriptions', 'drug_name', 'keep'),
    ('prescriptions', 'dose', 'keep'), ('prescriptions', 'quantity', 'keep')
) AS m(table_name, column_name, mask)
WHERE p.schema_name = 'clinic' AND p.table_name = m.table_name AND p.column_name = m.column_name;

-- The example schema's record ids are not PHI, but a copy that kept them
-- could be linked back to production: they are pseudonymised, each
-- reference in its referenced id's domain (the schema has no foreign keys,
-- see 0003).
INSERT INTO pgscribe.column_policy (schema_name, table_name, column_name, is_phi, mask, mask_domain)
SELECT 'clinic', m.table_name, m.column_name, false, 'pseudonym', m.domain
FROM (VALUES
    ('patients', 'id', NULL),
    ('appointments', 'id', NULL), ('appointments', 'patient_id', 'patients.id'),
    ('encounters', 'id', NULL), ('encounters', 'patient_id', 'patients.id'),
    ('encounters', 'appointment_id', 'appointments.id'),
    ('prescriptions', 'id', NULL), ('prescriptions', 'patient_id', 'patients.id'),
    ('prescriptions', 'encounter_id', 'encounters.id')
) AS m(table_name, column_name, domain)
WHERE to_regclass('clinic.' || m.table_name) IS NOT NULL
ON CONFLICT DO NOTHING;

-- An EXPORT event in the clinic's audit trail for each clinic a masked copy
-- took: who (session user and the operator named by the tool), where to
-- (the target's host and database, never a password), which columns were
-- decrypted or masked, and the row count; never a value. Returns the event id.
CREATE FUNCTION pgscribe.record_export(p_clinic text, p_schema text, p_columns text[],
                                       p_recipient text, p_rows bigint, p_operator text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id uuid := gen_random_uuid();
    v_actor text := session_user::text;
BEGIN
    IF p_clinic IS NULL OR p_clinic = '' OR p_schema IS NULL OR p_schema = '' THEN
        RAISE EXCEPTION 'record_export needs a clinic and a schema' USING ERRCODE = '22023';
    END IF;
    IF p_operator IS NOT NULL AND p_operator <> '' AND p_operator <> v_actor THEN
        v_actor := v_actor || ' (' || p_operator || ')';
    END IF;
    PERFORM set_config('pgscribe.clinic_id', p_clinic, true);
    INSERT INTO audit.event_ids (event_id, clinic_id) VALUES (v_id, p_clinic);
    PERFORM audit.chain(ARRAY[ROW(p_clinic, NULL, 'event', v_id, NULL, clock_timestamp(), NULL,
                                  v_actor, 'EXPORT', p_schema, '*', p_columns, 'success',
                                  p_recipient, 'masked copy', NULL, 'pgscribe anonymize',
                                  'rows=' || p_rows, NULL, NULL, NULL, NULL,
                                  NULL, NULL)::audit.events]);
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION pgscribe.record_export(text, text, text[], text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgscribe.record_export(text, text, text[], text, bigint, text)
    TO pgscribe_reader;
