-- The role pgscribe workers connect as: no superuser, no BYPASSRLS, owns
-- nothing, so row-level security always applies to it. Roles are
-- cluster-wide, hence created only if another database has not already.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgscribe_worker') THEN
        CREATE ROLE pgscribe_worker LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END;
$$;

GRANT USAGE ON SCHEMA pgscribe TO pgscribe_worker;
GRANT INSERT, SELECT ON pgscribe.applied_commands TO pgscribe_worker;
GRANT INSERT ON pgscribe.write_audit TO pgscribe_worker;
GRANT SELECT ON pgscribe.column_policy TO pgscribe_worker;
-- Functions are executable by PUBLIC by default; the explicit grant keeps
-- working if a hardened cluster revokes that.
GRANT EXECUTE ON FUNCTION pgscribe.expect_rows(bigint, bigint) TO pgscribe_worker;
