/* The plan of a masked copy (see anon_plan.h). */
#include "command/anon_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define MAX_HOPS 8

static const char *const TABLES_SQL =
    "SELECT c.relname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid"
    "             AND a.attname = 'clinic_id' AND NOT a.attisdropped)"
    " AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid"
    "             AND i.indisprimary)"
    " ORDER BY 1";

static const char *const POLICY_SQL =
    "SELECT table_name, column_name, mask, mask_domain FROM pgscribe.column_policy"
    " WHERE schema_name = $1";

/* Every (referencing column -> referenced column) pair of the foreign keys
 * of the schema, one row per column of a multi-column key. */
static const char *const FKEYS_SQL =
    "SELECT cl.relname, a.attname, rn.nspname || '.' || rc.relname, ra.attname"
    " FROM pg_catalog.pg_constraint k"
    " CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(ck, fk)"
    " JOIN pg_catalog.pg_class cl ON cl.oid = k.conrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace"
    " JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid"
    " JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace"
    " JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.ck"
    " JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = u.fk"
    " WHERE k.contype = 'f' AND n.nspname = $1";

static const char *const TARGET_SQL =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull"
    " FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2))"
    " AND a.attnum > 0 AND NOT a.attisdropped";

static PGresult *query(PGconn *pg, const char *sql, int n, const char *const *v, const char *what,
                       char *err, size_t errlen)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s: %.*s", what, (int)strcspn(PQerrorMessage(pg), "\n"),
                 PQerrorMessage(pg));
        PQclear(res);
        return NULL;
    }
    return res;
}

static int is_text(const char *t)
{
    return strcmp(t, "text") == 0 || strncmp(t, "character varying", 17) == 0;
}

static int is_datetime(const char *t)
{
    return strcmp(t, "date") == 0 || strcmp(t, "timestamp with time zone") == 0 ||
           strcmp(t, "timestamp without time zone") == 0;
}

/* The row of @p res (columns 0, 1: table, column) for @p table.@p column. */
static int find_row(PGresult *res, const char *table, const char *column)
{
    for (int r = 0; res && r < PQntuples(res); r++)
        if (strcmp(PQgetvalue(res, r, 0), table) == 0 && strcmp(PQgetvalue(res, r, 1), column) == 0)
            return r;
    return -1;
}

/* The column (@p *entity, @p *column) of the schema whose pseudonyms
 * @p entity.@p column shares: an explicit mask_domain, else the column a
 * foreign key references; "" when it is its own. */
static void next_domain(const pgs_anon_plan_t *p, PGresult *policy, PGresult *fkeys,
                        const char *table, const char *column, char *entity, size_t elen, char *col,
                        size_t clen)
{
    entity[0] = col[0] = '\0';
    int r = find_row(policy, table, column);
    if (r >= 0 && !PQgetisnull(policy, r, 3)) {
        const char *d = PQgetvalue(policy, r, 3), *dot = strchr(d, '.');
        snprintf(entity, elen, "%s.%.*s", p->schema, (int)(dot - d), d);
        snprintf(col, clen, "%s", dot + 1);
        return;
    }
    if ((r = find_row(fkeys, table, column)) >= 0) {
        snprintf(entity, elen, "%s", PQgetvalue(fkeys, r, 2));
        snprintf(col, clen, "%s", PQgetvalue(fkeys, r, 3));
    }
}

/* Follows domains to the column that is its own, at most MAX_HOPS steps. */
static void resolve_domain(const pgs_anon_plan_t *p, PGresult *policy, PGresult *fkeys,
                           const char *table, const char *column, pgs_anon_col_t *ac)
{
    char entity[512], col[256], cur_t[256], cur_c[256];
    snprintf(cur_t, sizeof(cur_t), "%s", table);
    snprintf(cur_c, sizeof(cur_c), "%s", column);
    char out_e[512];
    snprintf(out_e, sizeof(out_e), "%s.%s", p->schema, table);
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        next_domain(p, policy, fkeys, cur_t, cur_c, entity, sizeof(entity), col, sizeof(col));
        if (!entity[0])
            break;
        size_t sl = strlen(p->schema);
        snprintf(out_e, sizeof(out_e), "%s", entity);
        if (strncmp(entity, p->schema, sl) != 0 || entity[sl] != '.' ||
            (strcmp(entity + sl + 1, cur_t) == 0 && strcmp(col, cur_c) == 0)) {
            snprintf(cur_c, sizeof(cur_c), "%s", col);
            break; /* another schema, or its own: the end */
        }
        snprintf(cur_t, sizeof(cur_t), "%s", entity + sl + 1);
        snprintf(cur_c, sizeof(cur_c), "%s", col);
    }
    ac->domain_entity = pgs_xalloc_strdup(out_e);
    ac->domain_column = pgs_xalloc_strdup(cur_c);
}

static int check_column(const pgs_anon_plan_t *p, const pgs_anon_table_t *t, int i,
                        PGresult *target, char *err, size_t errlen)
{
    const pgs_ktcol_t *c = &t->kt.cols[i];
    const pgs_anon_col_t *ac = &t->cols[i];
    const char *name = c->name;
    int r = -1;
    for (int k = 0; k < PQntuples(target); k++)
        if (strcmp(PQgetvalue(target, k, 0), name) == 0)
            r = k;
    if (r < 0) {
        snprintf(err, errlen, "the target's %s.%s has no column %s", p->schema, t->kt.table, name);
        return -1;
    }
    if (strcmp(PQgetvalue(target, r, 1), ac->clear_type) != 0) {
        snprintf(err, errlen,
                 "the target's %s.%s.%s is %s, the copy's clear type is %s (a target column "
                 "under field encryption cannot take a masked copy)",
                 p->schema, t->kt.table, name, PQgetvalue(target, r, 1), ac->clear_type);
        return -1;
    }
    const char *why = NULL;
    if (ac->mask == PGS_MASK_PSEUDONYM && ac->form != PGS_MASK_AS_UUID && !is_text(ac->clear_type))
        why = "a pseudonym needs a text or uuid column";
    else if (ac->mask == PGS_MASK_YEAR && !is_datetime(ac->clear_type))
        why = "year needs a date or timestamp column";
    else if (c->pk_pos > 0 && ac->mask != PGS_MASK_KEEP && ac->mask != PGS_MASK_PSEUDONYM)
        why = "a primary-key column is kept or pseudonymised";
    else if (ac->mask == PGS_MASK_NULL && PQgetvalue(target, r, 2)[0] == 't')
        why = "null needs a nullable target column";
    else if (strcmp(name, "clinic_id") == 0 && ac->mask != PGS_MASK_KEEP)
        why = "clinic_id is kept (the copy is per clinic)";
    if (why) {
        snprintf(err, errlen, "%s.%s.%s: mask %s: %s", p->schema, t->kt.table, name,
                 pgs_mask_name(ac->mask), why);
        return -1;
    }
    return 0;
}

/* A reference and what it references are both pseudonymised or neither. */
static int check_domains(const pgs_anon_plan_t *p, char *err, size_t errlen)
{
    for (int a = 0; a < p->ntables; a++)
        for (int i = 0; i < p->tables[a].kt.ncols; i++) {
            const pgs_anon_col_t *ac = &p->tables[a].cols[i];
            for (int b = 0; b < p->ntables; b++) {
                const pgs_anon_table_t *t = &p->tables[b];
                char e[512];
                snprintf(e, sizeof(e), "%s.%s", p->schema, t->kt.table);
                if (strcmp(e, ac->domain_entity) != 0)
                    continue;
                for (int j = 0; j < t->kt.ncols; j++) {
                    if (strcmp(t->kt.cols[j].name, ac->domain_column) != 0 ||
                        ac->mask == PGS_MASK_NULL)
                        continue;
                    int here = ac->mask == PGS_MASK_PSEUDONYM,
                        there = t->cols[j].mask == PGS_MASK_PSEUDONYM;
                    if (here != there) {
                        snprintf(err, errlen,
                                 "%s.%s.%s references %s.%s, and only one of them is "
                                 "pseudonymised: the join would break",
                                 p->schema, p->tables[a].kt.table, p->tables[a].kt.cols[i].name,
                                 ac->domain_entity, ac->domain_column);
                        return -1;
                    }
                }
            }
        }
    return 0;
}

static int load_table(pgs_anon_plan_t *p, PGconn *src, PGconn *dst, const char *table,
                      PGresult *policy, PGresult *fkeys, char *err, size_t errlen)
{
    pgs_anon_table_t *t = &p->tables[p->ntables];
    if (pgs_ktable_load(src, p->schema, table, &t->kt, err, errlen) != 0)
        return -1;
    p->ntables++;
    t->cols = pgs_xalloc_calloc((size_t)t->kt.ncols, sizeof(*t->cols));
    for (int i = 0; i < t->kt.ncols; i++) {
        const pgs_ktcol_t *c = &t->kt.cols[i];
        pgs_anon_col_t *ac = &t->cols[i];
        int r = find_row(policy, table, c->name);
        ac->mask = PGS_MASK_KEEP;
        if (r >= 0 && pgs_mask_parse(PQgetvalue(policy, r, 2), &ac->mask) != 0) {
            snprintf(err, errlen, "%s.%s.%s: unknown mask", p->schema, table, c->name);
            return -1;
        }
        ac->clear_type = pgs_xalloc_strdup(c->sealed ? c->plain_type : c->type);
        ac->form = strcmp(ac->clear_type, "uuid") == 0 ? PGS_MASK_AS_UUID : PGS_MASK_AS_TEXT;
        ac->canon = c->sealed && (ac->mask == PGS_MASK_PSEUDONYM || ac->mask == PGS_MASK_YEAR) &&
                    !is_text(ac->clear_type);
        resolve_domain(p, policy, fkeys, table, c->name, ac);
        t->npseudonym += ac->mask == PGS_MASK_PSEUDONYM;
        t->nseal += c->sealed;
    }
    const char *v[2] = {p->schema, table};
    PGresult *target = query(dst, TARGET_SQL, 2, v, "reading the target's tables", err, errlen);
    if (!target)
        return -1;
    int rc = 0;
    if (PQntuples(target) == 0) {
        snprintf(err, errlen,
                 "the target has no table %s.%s (run `pgscribe migrate` against it first)",
                 p->schema, table);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < t->kt.ncols; i++)
        rc = check_column(p, t, i, target, err, errlen);
    PQclear(target);
    return rc;
}

/* Does table @p a reference table @p b by a foreign key (not itself)? */
static int references(const pgs_anon_plan_t *p, PGresult *fkeys, const char *a, const char *b)
{
    char e[512];
    snprintf(e, sizeof(e), "%s.%s", p->schema, b);
    if (strcmp(a, b) == 0)
        return 0;
    for (int r = 0; r < PQntuples(fkeys); r++)
        if (strcmp(PQgetvalue(fkeys, r, 0), a) == 0 && strcmp(PQgetvalue(fkeys, r, 2), e) == 0)
            return 1;
    return 0;
}

/* Referenced tables before the tables that reference them, so a copy
 * inserts in plan order and clears in reverse; a cycle keeps name order. */
static void order_tables(pgs_anon_plan_t *p, PGresult *fkeys)
{
    int n = p->ntables, placed = 0;
    pgs_anon_table_t *out = pgs_xalloc_calloc((size_t)n, sizeof(*out));
    int *used = pgs_xalloc_calloc((size_t)n, sizeof(int));
    while (placed < n) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++) {
            if (used[i])
                continue;
            int ready = 1;
            for (int j = 0; j < n && ready; j++)
                if (!used[j] && j != i &&
                    references(p, fkeys, p->tables[i].kt.table, p->tables[j].kt.table))
                    ready = 0;
            if (ready)
                pick = i;
        }
        for (int i = 0; i < n && pick < 0; i++)
            if (!used[i])
                pick = i; /* a cycle */
        used[pick] = 1;
        out[placed++] = p->tables[pick];
    }
    free(p->tables);
    free(used);
    p->tables = out;
}

int pgs_anon_plan_load(PGconn *src, PGconn *dst, const char *schema, pgs_anon_plan_t *p, char *err,
                       size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->schema = pgs_xalloc_strdup(schema);
    const char *v[1] = {schema};
    PGresult *tables = query(src, TABLES_SQL, 1, v, "listing the tables", err, errlen);
    PGresult *policy = tables ? query(src, POLICY_SQL, 1, v,
                                      "reading pgscribe.column_policy's masks (is the source "
                                      "migrated to 0016?)",
                                      err, errlen)
                              : NULL;
    PGresult *fkeys =
        policy ? query(src, FKEYS_SQL, 1, v, "reading the foreign keys", err, errlen) : NULL;
    int rc = fkeys ? 0 : -1;
    if (rc == 0 && PQntuples(tables) == 0) {
        snprintf(err, errlen, "schema %s has no table with a clinic_id and a primary key", schema);
        rc = -1;
    }
    if (rc == 0)
        p->tables = pgs_xalloc_calloc((size_t)PQntuples(tables), sizeof(*p->tables));
    for (int i = 0; rc == 0 && i < PQntuples(tables); i++)
        rc = load_table(p, src, dst, PQgetvalue(tables, i, 0), policy, fkeys, err, errlen);
    if (rc == 0)
        rc = check_domains(p, err, errlen);
    if (rc == 0)
        order_tables(p, fkeys);
    PQclear(tables);
    PQclear(policy);
    PQclear(fkeys);
    if (rc != 0)
        pgs_anon_plan_free(p);
    return rc;
}

void pgs_anon_plan_free(pgs_anon_plan_t *p)
{
    for (int i = 0; i < p->ntables; i++) {
        pgs_anon_table_t *t = &p->tables[i];
        for (int j = 0; t->cols && j < t->kt.ncols; j++) {
            free(t->cols[j].clear_type);
            free(t->cols[j].domain_entity);
            free(t->cols[j].domain_column);
        }
        free(t->cols);
        pgs_ktable_free(&t->kt);
    }
    free(p->tables);
    free(p->schema);
    memset(p, 0, sizeof(*p));
}
