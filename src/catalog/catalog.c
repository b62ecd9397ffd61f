/* Catalog: the target schema's entities, introspected from pg_catalog. */
#include "catalog/catalog.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/xalloc.h"

/* pg_type oids the catalog recognises by name. */
#define OID_INT8        20
#define OID_INT2        21
#define OID_INT4        23
#define OID_TIMESTAMP   1114
#define OID_TIMESTAMPTZ 1184

struct pgs_catalog_s {
    char *schema;
    pgs_entity_t **ents; /* sorted by name; pointers stay valid as the array grows */
    size_t n;
    size_t cap;
    atomic_size_t refs;   /* works pointing into it (pgs_catalog_ref) */
    uint64_t fingerprint; /* of the introspection's answer (pgs_catalog_fingerprint) */
};

pgs_catalog_t *pgs_catalog_new(const char *schema)
{
    pgs_catalog_t *cat = pgs_xalloc_malloc(sizeof(*cat));
    memset(cat, 0, sizeof(*cat));
    cat->schema = pgs_xalloc_strdup(schema);
    return cat;
}

static void entity_free(pgs_entity_t *ent)
{
    for (int i = 0; i < ent->ncols; i++) {
        free(ent->cols[i].name);
        free(ent->cols[i].type_sql);
        free(ent->cols[i].plain_type);
    }
    free(ent->cols);
    free(ent->pk);
    free(ent->name);
    free(ent);
}

pgs_catalog_t *pgs_catalog_ref(pgs_catalog_t *cat)
{
    atomic_fetch_add(&cat->refs, 1);
    return cat;
}

void pgs_catalog_unref(pgs_catalog_t *cat)
{
    atomic_fetch_sub(&cat->refs, 1);
}

size_t pgs_catalog_refs(const pgs_catalog_t *cat)
{
    return atomic_load(&((pgs_catalog_t *)cat)->refs);
}

void pgs_catalog_free(pgs_catalog_t *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n; i++)
        entity_free(cat->ents[i]);
    free(cat->ents);
    free(cat->schema);
    free(cat);
}

const char *pgs_catalog_schema(const pgs_catalog_t *cat)
{
    return cat->schema;
}

/* Index of @p name in the sorted array, or where it would be inserted. */
static size_t catalog_lower_bound(const pgs_catalog_t *cat, const char *name)
{
    size_t lo = 0, hi = cat->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(cat->ents[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Returns NULL when an entity of that name already exists. */
pgs_entity_t *pgs_catalog_add_entity(pgs_catalog_t *cat, const char *name)
{
    size_t pos = catalog_lower_bound(cat, name);
    if (pos < cat->n && strcmp(cat->ents[pos]->name, name) == 0)
        return NULL;
    if (cat->n == cat->cap) {
        cat->cap = cat->cap ? cat->cap * 2 : 16;
        cat->ents = pgs_xalloc_realloc(cat->ents, cat->cap * sizeof(*cat->ents));
    }
    pgs_entity_t *ent = pgs_xalloc_malloc(sizeof(*ent));
    memset(ent, 0, sizeof(*ent));
    ent->name = pgs_xalloc_strdup(name);
    ent->clinic_col = -1;
    ent->version_col = -1;
    ent->updated_at_col = -1;
    memmove(&cat->ents[pos + 1], &cat->ents[pos], (cat->n - pos) * sizeof(*cat->ents));
    cat->ents[pos] = ent;
    cat->n++;
    return ent;
}

void pgs_catalog_entity_set_sealed(pgs_entity_t *ent, int col, const char *plain_type,
                                   unsigned plain_oid)
{
    if (col < 0 || col >= ent->ncols)
        return;
    free(ent->cols[col].plain_type);
    ent->cols[col].sealed = 1;
    ent->cols[col].plain_type = pgs_xalloc_strdup(plain_type);
    ent->cols[col].plain_oid = plain_oid;
}

int pgs_catalog_entity_has_sealed(const pgs_entity_t *ent)
{
    for (int i = 0; i < ent->ncols; i++)
        if (ent->cols[i].sealed)
            return 1;
    return 0;
}

void pgs_catalog_entity_set_generated(pgs_entity_t *ent, int col)
{
    if (col >= 0 && col < ent->ncols)
        ent->cols[col].generated = 1;
}

/* @p is_pk is nonzero for primary key columns; its value is the column's
 * position in the key (1-based, as pgs_catalog_load passes it), so columns
 * added in attnum order still yield the key's own order. Equal values keep
 * the order in which columns were added. */
void pgs_catalog_entity_add_column(pgs_entity_t *ent, const char *name, const char *type_sql,
                                   unsigned type_oid, int is_pk, int not_null, int has_default,
                                   int is_phi)
{
    ent->cols = pgs_xalloc_realloc(ent->cols, (size_t)(ent->ncols + 1) * sizeof(*ent->cols));
    pgs_column_t *col = &ent->cols[ent->ncols++];
    col->name = pgs_xalloc_strdup(name);
    col->type_sql = pgs_xalloc_strdup(type_sql);
    col->type_oid = type_oid;
    col->is_pk = is_pk;
    col->not_null = not_null;
    col->has_default = has_default;
    col->is_phi = is_phi;
    col->generated = 0;
    col->sealed = 0;
    col->plain_type = NULL;
    col->plain_oid = 0;

    ent->pk = pgs_xalloc_realloc(ent->pk, (size_t)ent->ncols * sizeof(*ent->pk));
    ent->npk = 0;
    ent->clinic_col = ent->version_col = ent->updated_at_col = -1;
    for (int i = 0; i < ent->ncols; i++) {
        const pgs_column_t *c = &ent->cols[i];
        if (strcmp(c->name, "clinic_id") == 0) {
            ent->clinic_col = i;
            continue; /* clinic_id always comes from the command, never the key */
        }
        if (strcmp(c->name, "version") == 0 &&
            (c->type_oid == OID_INT2 || c->type_oid == OID_INT4 || c->type_oid == OID_INT8))
            ent->version_col = i;
        if (strcmp(c->name, "updated_at") == 0 &&
            (c->type_oid == OID_TIMESTAMP || c->type_oid == OID_TIMESTAMPTZ))
            ent->updated_at_col = i;
        if (c->is_pk) {
            int j = ent->npk++;
            while (j > 0 && ent->cols[ent->pk[j - 1]].is_pk > c->is_pk) {
                ent->pk[j] = ent->pk[j - 1];
                j--;
            }
            ent->pk[j] = i;
        }
    }
}

const pgs_entity_t *pgs_catalog_find(const pgs_catalog_t *cat, const char *entity)
{
    size_t pos = catalog_lower_bound(cat, entity);
    if (pos < cat->n && strcmp(cat->ents[pos]->name, entity) == 0)
        return cat->ents[pos];
    return NULL;
}

size_t pgs_catalog_entity_count(const pgs_catalog_t *cat)
{
    return cat->n;
}

const pgs_entity_t *pgs_catalog_entity_at(const pgs_catalog_t *cat, size_t i)
{
    return i < cat->n ? cat->ents[i] : NULL;
}

int pgs_catalog_entity_column(const pgs_entity_t *ent, const char *name)
{
    /* each field of each command passes here: the first byte rules out most
     * columns without a call */
    for (int i = 0; i < ent->ncols; i++) {
        const char *c = ent->cols[i].name;
        if (c[0] == name[0] && strcmp(c, name) == 0)
            return i;
    }
    return -1;
}

/* The walls of each table, judged over the policies that apply to the
 * connected role (PUBLIC, or a role it is a member of: a policy for, say, a
 * reporting role neither walls nor opens the worker's view). A policy is
 * walled when its expression reads the clinic setting the worker sets in each
 * transaction (pg_get_expr prints it schema-free here, as the introspection
 * pins search_path to pg_catalog); a permissive one that is not opens the
 * wall, since permissive policies combine with OR. */
// clang-format off
#define POLICY_APPLIES                                                                             \
    "(0::oid = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(r)"              \
    " WHERE pg_catalog.pg_has_role(current_user, pr.r, 'MEMBER')))"
#define POLICY_WALLED(col)                                                                         \
    "COALESCE(strpos(pg_catalog.pg_get_expr(p." col ", p.polrelid),"                               \
    " 'current_setting(''pgscribe.clinic_id''') > 0, false)"
#define CATALOG_SQL_WALLS                                                                          \
    " EXISTS (SELECT 1 FROM pg_catalog.pg_policy p"                                                \
    "         WHERE p.polrelid = c.oid AND " POLICY_APPLIES                                        \
    "           AND (" POLICY_WALLED("polqual") " OR " POLICY_WALLED("polwithcheck") "))"          \
    "   AS walled,"                                                                                \
    " EXISTS (SELECT 1 FROM pg_catalog.pg_policy p"                                                \
    "         WHERE p.polrelid = c.oid AND p.polpermissive AND " POLICY_APPLIES                    \
    "           AND ((p.polqual IS NOT NULL AND NOT " POLICY_WALLED("polqual") ")"                 \
    "             OR (p.polwithcheck IS NOT NULL AND NOT " POLICY_WALLED("polwithcheck") ")))"     \
    "   AS open_policy,"

/* One row per column of every ordinary or partitioned table of the schema,
 * grouped by table. pk_pos is the column's 1-based place in the primary key
 * (0 = not in it). The policy variant only differs in reading is_phi from
 * pgscribe.column_policy, which may not exist yet. */
#define CATALOG_SQL_HEAD                                                                           \
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid,"               \
    " a.attnotnull,"                                                                               \
    " (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''"                                 \
    "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_type d"                                              \
    "             WHERE d.oid = a.atttypid AND d.typdefaultbin IS NOT NULL)) AS has_default,"      \
    " (a.attgenerated <> '' OR a.attidentity = 'a') AS generated,"                                 \
    " COALESCE((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"              \
    "           WHERE k.attnum = a.attnum), 0) AS pk_pos,"                                         \
    " c.relrowsecurity, c.relforcerowsecurity, i.indexrelid IS NOT NULL AS has_pk,"                \
    CATALOG_SQL_WALLS
// clang-format on
#define CATALOG_SQL_TAIL                                                                           \
    " FROM pg_catalog.pg_class c"                                                                  \
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"                                    \
    " JOIN pg_catalog.pg_attribute a"                                                              \
    "   ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"                             \
    " LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary"                    \
    " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')"                                            \
    " ORDER BY c.relname, a.attnum"

#define CATALOG_SQL_NOT_SEALED ", false AS sealed, NULL::text AS plain_type, 0::oid AS plain_oid"
static const char catalog_sql_plain[] =
    CATALOG_SQL_HEAD " false AS is_phi" CATALOG_SQL_NOT_SEALED CATALOG_SQL_TAIL;
#define CATALOG_SQL_PHI                                                                            \
    " COALESCE((SELECT bool_or(p.is_phi) FROM pgscribe.column_policy p"                            \
    " WHERE p.schema_name = n.nspname AND p.table_name = c.relname"                                \
    " AND p.column_name = a.attname), false) AS is_phi"
static const char catalog_sql_policy[] =
    CATALOG_SQL_HEAD CATALOG_SQL_PHI CATALOG_SQL_NOT_SEALED CATALOG_SQL_TAIL;
/* with migration 0014: a column_policy row marked encrypted on a bytea column
 * (what `pgscribe keys protect` leaves) is a sealed column */
#define CATALOG_SQL_SEALED_POLICY                                                                  \
    "(SELECT p.plain_type FROM pgscribe.column_policy p"                                           \
    " WHERE p.schema_name = n.nspname AND p.table_name = c.relname"                                \
    " AND p.column_name = a.attname AND p.encrypted AND a.atttypid = 'bytea'::regtype"             \
    " AND p.plain_type IS NOT NULL LIMIT 1)"
static const char catalog_sql_sealed[] = CATALOG_SQL_HEAD CATALOG_SQL_PHI
    ", " CATALOG_SQL_SEALED_POLICY " IS NOT NULL AS sealed, " CATALOG_SQL_SEALED_POLICY
    " AS plain_type,"
    " COALESCE(pg_catalog.to_regtype(" CATALOG_SQL_SEALED_POLICY
    ")::oid, 0) AS plain_oid" CATALOG_SQL_TAIL;

enum {
    COL_REL,
    COL_ATT,
    COL_TYPE,
    COL_OID,
    COL_NOTNULL,
    COL_DEF,
    COL_GENERATED,
    COL_PKPOS,
    COL_RLS,
    COL_FORCE,
    COL_HASPK,
    COL_WALLED,
    COL_OPEN,
    COL_PHI,
    COL_SEALED,
    COL_PLAIN_TYPE,
    COL_PLAIN_OID
};

static int bool_at(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

const char *pgs_catalog_table_problem(const pgs_table_facts_t *t)
{
    if (!t->has_clinic)
        return "no clinic_id column";
    if (!t->has_pk)
        return "no primary key";
    if (!t->rls)
        return "row-level security not enabled";
    if (!t->force_rls)
        return "row-level security not forced (its owner would bypass it)";
    if (!t->walled_policy)
        return "no policy uses current_setting('pgscribe.clinic_id')";
    if (t->open_policy)
        return "a permissive policy does not use current_setting('pgscribe.clinic_id') "
               "(permissive policies combine with OR, so it opens the wall)";
    return NULL;
}

int pgs_catalog_entity_pk_has_clinic(const pgs_entity_t *ent)
{
    return ent->clinic_col >= 0 && ent->cols[ent->clinic_col].is_pk;
}

/* Adds table rows [first, end) of @p res as an entity, or warns why not:
 * a table left out is one the worker refuses commands for, and the operator
 * should learn that at start, not from dead letters. */
static void catalog_add_table(pgs_catalog_t *cat, const PGresult *res, int first, int end)
{
    const char *rel = PQgetvalue(res, first, COL_REL);
    pgs_table_facts_t facts = {
        .has_pk = bool_at(res, first, COL_HASPK),
        .rls = bool_at(res, first, COL_RLS),
        .force_rls = bool_at(res, first, COL_FORCE),
        .walled_policy = bool_at(res, first, COL_WALLED),
        .open_policy = bool_at(res, first, COL_OPEN),
    };
    for (int r = first; r < end; r++) {
        if (strcmp(PQgetvalue(res, r, COL_ATT), "clinic_id") == 0)
            facts.has_clinic = 1;
    }
    const char *skip = pgs_catalog_table_problem(&facts);
    if (skip) {
        pgs_warn("catalog", "table %s.%s is not an entity: %s", cat->schema, rel, skip);
        return;
    }
    pgs_entity_t *ent = pgs_catalog_add_entity(cat, rel);
    if (!ent)
        return; /* cannot happen: relnames are unique within a schema */
    for (int r = first; r < end; r++) {
        pgs_catalog_entity_add_column(
            ent, PQgetvalue(res, r, COL_ATT), PQgetvalue(res, r, COL_TYPE),
            (unsigned)strtoul(PQgetvalue(res, r, COL_OID), NULL, 10),
            atoi(PQgetvalue(res, r, COL_PKPOS)), bool_at(res, r, COL_NOTNULL),
            bool_at(res, r, COL_DEF), bool_at(res, r, COL_PHI));
        if (bool_at(res, r, COL_GENERATED))
            pgs_catalog_entity_set_generated(ent, ent->ncols - 1);
        if (bool_at(res, r, COL_SEALED))
            pgs_catalog_entity_set_sealed(
                ent, ent->ncols - 1, PQgetvalue(res, r, COL_PLAIN_TYPE),
                (unsigned)strtoul(PQgetvalue(res, r, COL_PLAIN_OID), NULL, 10));
    }
    if (!pgs_catalog_entity_pk_has_clinic(ent))
        pgs_warn("catalog",
                 "entity %s.%s: primary key omits clinic_id, so an INSERT's unique violation "
                 "can tell one clinic that a key exists in another; make it (clinic_id, ...)",
                 cat->schema, rel);
    pgs_debug("catalog", "entity %s.%s: %d columns, %d key columns%s", cat->schema, rel, ent->ncols,
              ent->npk, ent->version_col >= 0 ? ", versioned" : "");
}

/* Copies libpq's last error without its trailing newline. */
static void set_pq_error(PGconn *conn, const char *what, char *errstr, size_t errstr_size)
{
    const char *msg = PQerrorMessage(conn);
    int len = (int)strcspn(msg, "\n");
    snprintf(errstr, errstr_size, "catalog: %s: %.*s", what, len, msg);
}

static int exec_ok(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        set_pq_error(conn, sql, errstr, errstr_size);
    PQclear(res);
    return ok;
}

/* The introspection runs in its own read-only transaction with search_path
 * pinned to pg_catalog, so format_type() schema-qualifies every user type
 * (enums, domains) and the casts in generated SQL do not depend on the
 * worker connections' search_path. */
/* FNV-1a over every value of the introspection's answer, each with its
 * length, so that any change in a column, type, key, policy or PHI mark of
 * the schema changes it. */
static uint64_t answer_fingerprint(const PGresult *res, int has_policy)
{
    uint64_t h = pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, &has_policy, sizeof(has_policy));
    int rows = PQntuples(res), cols = PQnfields(res);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            uint32_t len = (uint32_t)PQgetlength(res, r, c);
            h = pgs_hash_fnv1a64(h, &len, sizeof(len));
            h = pgs_hash_fnv1a64(h, PQgetvalue(res, r, c), len);
        }
    return h ? h : 1; /* 0 means "none known" to pgs_catalog_load_changed */
}

uint64_t pgs_catalog_fingerprint(const pgs_catalog_t *cat)
{
    return cat ? cat->fingerprint : 0;
}

pgs_catalog_t *pgs_catalog_load(PGconn *conn, const char *schema, char *errstr, size_t errstr_size)
{
    int unchanged;
    return pgs_catalog_load_changed(conn, schema, 0, &unchanged, errstr, errstr_size);
}

pgs_catalog_t *pgs_catalog_load_changed(PGconn *conn, const char *schema, uint64_t known,
                                        int *unchanged, char *errstr, size_t errstr_size)
{
    pgs_catalog_t *cat = NULL;
    PGresult *res = NULL;
    int in_tx = 0;
    *unchanged = 0;
    const char *params[1] = {schema};

    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        snprintf(errstr, errstr_size, "catalog: connection is not idle");
        return NULL;
    }
    if (!exec_ok(conn,
                 "BEGIN READ ONLY; SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)",
                 errstr, errstr_size))
        goto fail;
    in_tx = 1;

    res = PQexec(conn, "SELECT to_regclass('pgscribe.column_policy') IS NOT NULL,"
                       " EXISTS (SELECT 1 FROM pg_catalog.pg_attribute"
                       "  WHERE attrelid = to_regclass('pgscribe.column_policy')"
                       "  AND attname = 'plain_type' AND NOT attisdropped)");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        set_pq_error(conn, "looking for pgscribe.column_policy", errstr, errstr_size);
        goto fail;
    }
    int has_policy = bool_at(res, 0, 0);
    int has_encrypt = bool_at(res, 0, 1);
    PQclear(res);

    res = PQexecParams(conn,
                       has_encrypt  ? catalog_sql_sealed
                       : has_policy ? catalog_sql_policy
                                    : catalog_sql_plain,
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_pq_error(conn, "introspecting the schema", errstr, errstr_size);
        goto fail;
    }
    uint64_t fingerprint = answer_fingerprint(res, has_policy);
    if (known != 0 && fingerprint == known) {
        *unchanged = 1; /* nothing to build, nothing to warn about again */
        PQclear(res);
        res = NULL;
        in_tx = 0;
        if (!exec_ok(conn, "COMMIT", errstr, errstr_size))
            goto fail;
        return NULL;
    }
    if (!has_policy)
        pgs_debug("catalog", "pgscribe.column_policy missing: no column is marked PHI");

    cat = pgs_catalog_new(schema);
    cat->fingerprint = fingerprint;
    int nrows = PQntuples(res);
    for (int first = 0; first < nrows;) {
        int end = first + 1;
        while (end < nrows &&
               strcmp(PQgetvalue(res, end, COL_REL), PQgetvalue(res, first, COL_REL)) == 0)
            end++;
        catalog_add_table(cat, res, first, end);
        first = end;
    }
    PQclear(res);
    res = NULL;

    /* inside the same snapshot as the tables it judges */
    if (pgs_catalog_check_role(conn, cat, errstr, errstr_size) != 0 ||
        pgs_catalog_check_schema(conn, errstr, errstr_size) != 0)
        goto fail;

    in_tx = 0;
    if (!exec_ok(conn, "COMMIT", errstr, errstr_size))
        goto fail;
    return cat;

fail:
    PQclear(res);
    if (in_tx) {
        res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    pgs_catalog_free(cat);
    return NULL;
}
