-- pgscribe prune deletes idempotency records by age. applied_at grows with
-- insertion order, so a BRIN index finds old rows for almost no write cost.
CREATE INDEX applied_commands_applied_at_brin
    ON pgscribe.applied_commands USING brin (applied_at);
