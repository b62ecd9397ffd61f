/* Schema check: the pgscribe objects this worker's statements need exist. */
#include "catalog/catalog.h"

#include <stdio.h>
#include <string.h>

/* Each object a generated statement names, with the migration that makes it.
 * A worker newer than its database would otherwise fail every PREPARE with a
 * permanent error and dead-letter every command; it refuses to start instead. */
static const struct {
    const char *what;
    const char *sql; /* one boolean: present */
    const char *migration;
} required[] = {
    {"pgscribe.expect_rows()",
     "SELECT to_regprocedure('pgscribe.expect_rows(bigint,bigint)') IS NOT NULL", "0001"},
    {"pgscribe.expect_all()",
     "SELECT to_regprocedure('pgscribe.expect_all(bigint,bigint)') IS NOT NULL", "0004"},
    {"pgscribe.expect_clinic()",
     "SELECT to_regprocedure('pgscribe.expect_clinic(text)') IS NOT NULL", "0008"},
    {"pgscribe.expect_clinics()",
     "SELECT to_regprocedure('pgscribe.expect_clinics(text[],text)') IS NOT NULL", "0019"},
    {"pgscribe.applied_commands.digest",
     "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute"
     " WHERE attrelid = to_regclass('pgscribe.applied_commands') AND attname = 'digest'"
     " AND NOT attisdropped)",
     "0009"},
    {"pgscribe.expect_same_command()",
     "SELECT to_regprocedure('pgscribe.expect_same_command(uuid,bytea,bytea)') IS NOT NULL",
     "0009"},
    {"audit.events", "SELECT to_regclass('audit.events') IS NOT NULL", "0010"},
    {"audit.lock_head()", "SELECT to_regprocedure('audit.lock_head()') IS NOT NULL", "0010"},
    {"audit.append_events()",
     "SELECT to_regprocedure('audit.append_events(text[],uuid[],text[],text[],text[],text[],"
     "text[],bigint[],text[],jsonb[],integer[],bigint[],text,text[],text[],text[],text[])') IS NOT "
     "NULL",
     "0010"},
    {"audit.append_writes()",
     "SELECT to_regprocedure('audit.append_writes(uuid[],text[],bigint[],text[],text[],integer[],"
     "bigint[],text[],text,text,text)') IS NOT NULL",
     "0010"},
    {"audit.append_transaction_writes()",
     "SELECT to_regprocedure('audit.append_transaction_writes(uuid[],text[],bigint[],text[],"
     "text[],integer[],bigint[],text[],text[],text[],text)') IS NOT NULL",
     "0018"},
};

int pgs_catalog_check_schema(PGconn *conn, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        PGresult *res = PQexec(conn, required[i].sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            const char *msg = PQerrorMessage(conn);
            snprintf(errstr, errstr_size, "catalog: checking for %s: %.*s", required[i].what,
                     (int)strcspn(msg, "\n"), msg);
            PQclear(res);
            return -1;
        }
        int present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!present) {
            snprintf(errstr, errstr_size,
                     "the database lacks %s (migration %s): it is older than this worker; run "
                     "pgscribe migrate first",
                     required[i].what, required[i].migration);
            return -1;
        }
    }
    return 0;
}
