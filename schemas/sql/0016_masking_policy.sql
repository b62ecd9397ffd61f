-- Masked copies (`pgscribe anonymize`): how each column is rewritten when a
-- clinic is copied out of production. pseudonym: HMAC-SHA-256 under the
-- keyring's pseudonym key, equal inputs give equal outputs (joins hold; a
-- key column that others reference is pseudonymised in the referenced
-- column's domain in every table); year: a date or timestamp truncated to
-- 1 January of its year; null: dropped; keep: copied unchanged. Columns
-- without a row here are kept; a PHI column defaults to null.
ALTER TABLE pgscribe.column_policy
    ADD COLUMN mask text NOT NULL DEFAULT 'keep'
        CHECK (mask IN ('pseudonym', 'year', 'null', 'keep'));

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
