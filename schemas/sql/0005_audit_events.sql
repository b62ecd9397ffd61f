-- Audit events consumed from the audit topic (AuditEvent records), stored
-- by their own connection pool apart from the write commands. An event id is
-- stored at most once.
CREATE TABLE pgscribe.audit_events (
    event_id        uuid PRIMARY KEY,
    clinic_id       text NOT NULL,
    actor           text NOT NULL,
    action          text NOT NULL,
    resource_type   text NOT NULL,
    resource_id     text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('SUCCESS', 'DENIED', 'ERROR')),
    occurred_at     timestamptz NOT NULL,
    source          text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}',
    kafka_topic     text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_clinic_time ON pgscribe.audit_events (clinic_id, occurred_at);

GRANT INSERT, SELECT ON pgscribe.audit_events TO pgscribe_worker;
