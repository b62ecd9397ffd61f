-- Walls: the example schema's keys become (clinic_id, id), so a clinic's
-- INSERT can never collide with (and so learn of) another clinic's row; and
-- the worker role keeps only the privileges its statements use.

-- Composite primary keys. The clinic_id indexes become redundant: each key
-- now leads with clinic_id. Row-level security stays enabled and forced.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['patients', 'appointments', 'encounters', 'prescriptions'] LOOP
        EXECUTE format('ALTER TABLE clinic.%I DROP CONSTRAINT %I', t, t || '_pkey');
        EXECUTE format('ALTER TABLE clinic.%I ADD CONSTRAINT %I PRIMARY KEY (clinic_id, id)',
                       t, t || '_pkey');
        EXECUTE format('DROP INDEX IF EXISTS clinic.%I', t || '_clinic');
        EXECUTE format('ALTER TABLE clinic.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE clinic.%I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END;
$$;

-- Least privilege. The worker only inserts audit events and never reads
-- them back, so a compromised worker cannot read every clinic's audit
-- trail; ON CONFLICT (event_id) reads the arbiter column, hence its SELECT.
REVOKE ALL ON pgscribe.audit_events FROM pgscribe_worker;
GRANT INSERT ON pgscribe.audit_events TO pgscribe_worker;
GRANT SELECT (event_id) ON pgscribe.audit_events TO pgscribe_worker;

-- Idempotency records: ON CONFLICT (command_id) ... RETURNING command_id
-- reads that column alone; the other clinics' topics, offsets and clinic ids stay unreadable.
REVOKE ALL ON pgscribe.applied_commands FROM pgscribe_worker;
GRANT INSERT ON pgscribe.applied_commands TO pgscribe_worker;
GRANT SELECT (command_id) ON pgscribe.applied_commands TO pgscribe_worker;

-- The write audit is written, never read, by the worker.
REVOKE ALL ON pgscribe.write_audit FROM pgscribe_worker;
GRANT INSERT ON pgscribe.write_audit TO pgscribe_worker;

-- The catalog reads which columns are PHI.
REVOKE ALL ON pgscribe.column_policy FROM pgscribe_worker;
GRANT SELECT ON pgscribe.column_policy TO pgscribe_worker;

-- Entity tables: SELECT is needed because UPDATE, DELETE and upsert read
-- the key, clinic and version columns in their conditions; no TRUNCATE,
-- REFERENCES or TRIGGER.
REVOKE ALL ON clinic.patients, clinic.appointments, clinic.encounters, clinic.prescriptions
    FROM pgscribe_worker;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON clinic.patients, clinic.appointments, clinic.encounters, clinic.prescriptions
    TO pgscribe_worker;

-- Schemas: USAGE only, never CREATE.
REVOKE CREATE ON SCHEMA pgscribe, clinic FROM pgscribe_worker;
