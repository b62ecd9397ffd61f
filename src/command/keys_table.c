/* Target-table introspection for the key commands (see keys_table.h). */
#include "command/keys_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static const char *const TABLE_SQL =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    " COALESCE((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
    "           WHERE k.attnum = a.attnum), 0),"
    " COALESCE(p.is_phi, false),"
    " COALESCE(p.encrypted AND a.atttypid = 'bytea'::regtype AND p.plain_type IS NOT NULL,"
    "          false),"
    " p.plain_type, i.indexrelid IS NOT NULL"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
    "  AND NOT a.attisdropped"
    " LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"
    " LEFT JOIN pgscribe.column_policy p ON p.schema_name = n.nspname"
    "  AND p.table_name = c.relname AND p.column_name = a.attname"
    " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
    " ORDER BY a.attnum";

int pgs_ktable_load(PGconn *pg, const char *schema, const char *table, pgs_ktable_t *t, char *err,
                    size_t errlen)
{
    memset(t, 0, sizeof(*t));
    const char *params[2] = {schema, table};
    PGresult *res = PQexecParams(pg, TABLE_SQL, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading %s.%s: %.*s", schema, table,
                 (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    if (n == 0 || PQgetvalue(res, 0, 6)[0] != 't') {
        snprintf(err, errlen, "%s.%s: %s", schema, table,
                 n == 0 ? "no such table" : "no primary key");
        PQclear(res);
        return -1;
    }
    t->schema = pgs_xalloc_strdup(schema);
    t->table = pgs_xalloc_strdup(table);
    t->cols = pgs_xalloc_malloc((size_t)n * sizeof(*t->cols));
    t->ncols = n;
    for (int r = 0; r < n; r++) {
        pgs_ktcol_t *c = &t->cols[r];
        c->name = pgs_xalloc_strdup(PQgetvalue(res, r, 0));
        c->type = pgs_xalloc_strdup(PQgetvalue(res, r, 1));
        c->pk_pos = atoi(PQgetvalue(res, r, 2));
        c->is_phi = PQgetvalue(res, r, 3)[0] == 't';
        c->sealed = PQgetvalue(res, r, 4)[0] == 't';
        c->plain_type = PQgetisnull(res, r, 5) ? NULL : pgs_xalloc_strdup(PQgetvalue(res, r, 5));
        if (strcmp(c->name, "clinic_id") == 0)
            t->has_clinic = 1;
    }
    PQclear(res);
    if (!t->has_clinic) {
        snprintf(err, errlen, "%s.%s: no clinic_id column", schema, table);
        pgs_ktable_free(t);
        return -1;
    }
    return 0;
}

void pgs_ktable_free(pgs_ktable_t *t)
{
    for (int i = 0; i < t->ncols; i++) {
        free(t->cols[i].name);
        free(t->cols[i].type);
        free(t->cols[i].plain_type);
    }
    free(t->cols);
    free(t->schema);
    free(t->table);
    memset(t, 0, sizeof(*t));
}

void pgs_ktable_ident(pgs_sbuf_t *sb, const pgs_ktable_t *t)
{
    pgs_sbuf_quoted(sb, t->schema, '"');
    pgs_sbuf_puts(sb, ".");
    pgs_sbuf_quoted(sb, t->table, '"');
}

void pgs_ktable_row_key_sql(pgs_sbuf_t *sb, const pgs_ktable_t *t, const char *alias)
{
    pgs_sbuf_puts(sb, "concat_ws(E'\\x1f'");
    for (int pos = 1; pos <= t->ncols; pos++)
        for (int i = 0; i < t->ncols; i++) {
            const pgs_ktcol_t *c = &t->cols[i];
            if (c->pk_pos != pos || strcmp(c->name, "clinic_id") == 0)
                continue;
            pgs_sbuf_puts(sb, ", ");
            if (alias)
                pgs_sbuf_printf(sb, "%s.", alias);
            pgs_sbuf_quoted(sb, c->name, '"');
            pgs_sbuf_puts(sb, "::text");
        }
    pgs_sbuf_puts(sb, ")");
}

PGresult *pgs_ktable_phi_tables(PGconn *pg, const char *schema, char *err, size_t errlen)
{
    const char *params[1] = {schema};
    PGresult *res = PQexecParams(pg,
                                 "SELECT DISTINCT p.table_name FROM pgscribe.column_policy p"
                                 " WHERE p.schema_name = $1 AND p.is_phi"
                                 " AND to_regclass(quote_ident(p.schema_name) || '.' ||"
                                 " quote_ident(p.table_name)) IS NOT NULL ORDER BY 1",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading pgscribe.column_policy: %.*s",
                 (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }
    return res;
}

PgsKeyring *pgs_ktable_keyring(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no keyring: give --keyring or set crypto.keyring");
        return NULL;
    }
    PgsKeyring *ring = NULL;
    char why[512];
    if (pgs_keyring_load(path, &ring, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "keyring %s: %s", path, why);
        return NULL;
    }
    return ring;
}

PGconn *pgs_ktable_connect(const char *conninfo, const char *who)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *m = PQerrorMessage(pg);
        fprintf(stderr, "%s: cannot connect: %.*s\n", who, (int)strcspn(m, "\n"), m);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

int pgs_ktable_exec(PGconn *pg, const char *sql, const char *who)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) {
        const char *m = PQerrorMessage(pg);
        fprintf(stderr, "%s: %.*s\n", who, (int)strcspn(m, "\n"), m);
    }
    PQclear(res);
    return ok ? 0 : -1;
}
