/* Role check: the worker refuses a role that row-level security would not bind. */
#include "catalog/catalog.h"

#include <stdio.h>
#include <string.h>

/* The roles the connected one is or may become (SET ROLE) that RLS does not
 * bind: itself first, so the message names the plainest fault. */
static const char role_sql[] =
    "SELECT current_user, r.rolname, r.rolsuper, r.rolname = current_user"
    " FROM pg_catalog.pg_roles r"
    " WHERE (r.rolsuper OR r.rolbypassrls)"
    "   AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')"
    " ORDER BY r.rolname = current_user DESC, r.rolname LIMIT 1";

/* Tables of the schema whose owner the connected role is or may become: an
 * owner can turn FORCE ROW LEVEL SECURITY off, so the wall would be its own. */
static const char owner_sql[] =
    "SELECT current_user, c.relname, pg_catalog.pg_get_userbyid(c.relowner)"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')"
    "   AND pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')"
    " ORDER BY c.relname";

#define ROLE_ADVICE                                                                                \
    "connect as a role with NOSUPERUSER NOBYPASSRLS that owns no entity table (pgscribe_worker)"

static int query_failed(PGconn *conn, PGresult *res, char *errstr, size_t errstr_size)
{
    const char *msg = PQerrorMessage(conn);
    snprintf(errstr, errstr_size, "catalog: checking the worker role: %.*s",
             (int)strcspn(msg, "\n"), msg);
    PQclear(res);
    return -1;
}

int pgs_catalog_check_role(PGconn *conn, const pgs_catalog_t *cat, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(conn, role_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(conn, res, errstr, errstr_size);
    if (PQntuples(res) > 0) {
        const char *self = PQgetvalue(res, 0, 0), *role = PQgetvalue(res, 0, 1);
        const char *what = PQgetvalue(res, 0, 2)[0] == 't' ? "a superuser" : "BYPASSRLS";
        if (PQgetvalue(res, 0, 3)[0] == 't')
            snprintf(errstr, errstr_size,
                     "role \"%s\" is %s, so row-level security does not bind it; " ROLE_ADVICE,
                     self, what);
        else
            snprintf(errstr, errstr_size,
                     "role \"%s\" is a member of \"%s\", which is %s, so row-level security "
                     "does not bind it; " ROLE_ADVICE,
                     self, role, what);
        PQclear(res);
        return -1;
    }
    PQclear(res);

    const char *params[1] = {pgs_catalog_schema(cat)};
    res = PQexecParams(conn, owner_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return query_failed(conn, res, errstr, errstr_size);
    for (int r = 0; r < PQntuples(res); r++) {
        if (!pgs_catalog_find(cat, PQgetvalue(res, r, 1)))
            continue;
        snprintf(errstr, errstr_size,
                 "role \"%s\" owns entity table %s.%s (as \"%s\"), so it could switch its "
                 "row-level security off; " ROLE_ADVICE,
                 PQgetvalue(res, r, 0), pgs_catalog_schema(cat), PQgetvalue(res, r, 1),
                 PQgetvalue(res, r, 2));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}
