-- The default target schema `clinic`: an example of what pgscribe writes to.
-- An entity is any table here with a clinic_id column, a primary key and
-- row-level security enabled; the worker discovers them from the catalog.
--
-- No foreign keys between these tables on purpose: commands for different
-- rows are applied concurrently and in any order across keys, so an
-- appointment may legitimately arrive before its patient.

CREATE SCHEMA IF NOT EXISTS clinic;

CREATE TYPE clinic.appointment_status AS ENUM
    ('booked', 'arrived', 'fulfilled', 'cancelled', 'noshow');

CREATE TABLE clinic.patients (
    id          uuid PRIMARY KEY,
    clinic_id   text NOT NULL,
    mrn         text,
    given_name  text,
    family_name text,
    birth_date  date,
    sex         text,
    phone       text,
    email       text,
    address     text,
    weight_kg   numeric(5, 2),
    active      boolean NOT NULL DEFAULT true,
    notes       text,
    photo       bytea,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinic.appointments (
    id           uuid PRIMARY KEY,
    clinic_id    text NOT NULL,
    patient_id   uuid NOT NULL,
    practitioner text,
    starts_at    timestamptz NOT NULL,
    duration_min int,
    status       clinic.appointment_status NOT NULL DEFAULT 'booked',
    reason       text,
    version      bigint NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinic.encounters (
    id             uuid PRIMARY KEY,
    clinic_id      text NOT NULL,
    patient_id     uuid NOT NULL,
    appointment_id uuid,
    kind           text,
    started_at     timestamptz,
    ended_at       timestamptz,
    diagnosis_code text,
    notes          text,
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinic.prescriptions (
    id            uuid PRIMARY KEY,
    clinic_id     text NOT NULL,
    patient_id    uuid NOT NULL,
    encounter_id  uuid,
    drug_code     text NOT NULL,
    drug_name     text,
    dose          text,
    quantity      int,
    refills       int NOT NULL DEFAULT 0,
    status        text,
    prescribed_at timestamptz,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX patients_clinic ON clinic.patients (clinic_id);
CREATE INDEX appointments_clinic ON clinic.appointments (clinic_id);
CREATE INDEX encounters_clinic ON clinic.encounters (clinic_id);
CREATE INDEX prescriptions_clinic ON clinic.prescriptions (clinic_id);

-- Tenancy: each transaction of the worker sets pgscribe.clinic_id locally;
-- a row of another clinic is neither visible nor writable. FORCE applies the
-- policy to the owner too; the unset setting (NULL) matches no row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['patients', 'appointments', 'encounters', 'prescriptions'] LOOP
        EXECUTE format('ALTER TABLE clinic.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE clinic.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY clinic_isolation ON clinic.%I FOR ALL'
                       ' USING (clinic_id = current_setting(''pgscribe.clinic_id'', true))'
                       ' WITH CHECK (clinic_id = current_setting(''pgscribe.clinic_id'', true))', t);
    END LOOP;
END;
$$;

GRANT USAGE ON SCHEMA clinic TO pgscribe_worker;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON clinic.patients, clinic.appointments, clinic.encounters, clinic.prescriptions
    TO pgscribe_worker;

-- PHI columns: masked in non-production copies and candidates for field
-- encryption (encrypted stays false until a keyring is configured).
INSERT INTO pgscribe.column_policy (schema_name, table_name, column_name, is_phi)
SELECT 'clinic', p.table_name, p.column_name, true
FROM (VALUES
    ('patients', 'mrn'), ('patients', 'given_name'), ('patients', 'family_name'),
    ('patients', 'birth_date'), ('patients', 'sex'), ('patients', 'phone'),
    ('patients', 'email'), ('patients', 'address'), ('patients', 'weight_kg'),
    ('patients', 'notes'), ('patients', 'photo'),
    ('appointments', 'reason'),
    ('encounters', 'diagnosis_code'), ('encounters', 'notes'),
    ('prescriptions', 'drug_code'), ('prescriptions', 'drug_name'),
    ('prescriptions', 'dose'), ('prescriptions', 'quantity')
) AS p(table_name, column_name);
