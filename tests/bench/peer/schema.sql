-- The benchmark peer's tables in database pgs_peer: the columns, primary keys
-- and clinic_id indexes of pgscribe's clinic tables (schemas/sql/0003), as
-- plain tables: no row-level security, no triggers, no pgscribe schema.
-- appointments.status is text, not clinic.appointment_status: the Debezium
-- JDBC sink binds a string as text, and PostgreSQL has no assignment cast
-- from text to an enum.
CREATE SCHEMA clinic;

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
    status       text NOT NULL DEFAULT 'booked',
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

-- The sink's own login role, so that its backends are told from the polling
-- session's by their process title.
GRANT USAGE ON SCHEMA clinic TO pgs_peer_sink;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA clinic TO pgs_peer_sink;
