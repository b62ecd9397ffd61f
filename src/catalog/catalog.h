/* Catalog: the target schema introspected from PostgreSQL. The database is
 * the allowlist: a command naming anything not here is rejected. */
#ifndef PGSCRIBE_CATALOG_H
#define PGSCRIBE_CATALOG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/command.h"
#include "policy/error.h"

/** Most data columns one command may set (the width of a statement shape). */
#define PGS_MAX_DATA_COLS 64
/** Key and data columns one command may name together, beyond the data width:
 *  a statement binds fixed + key + data + expected_version parameters. */
#define PGS_MAX_KEY_COLS 7

typedef struct {
    char *name;
    char *type_sql;    /* format_type() text, usable as a cast target */
    unsigned type_oid; /* pg_type oid */
    int not_null;
    int has_default;
    int is_pk;
    int is_phi; /* marked in pgscribe.column_policy */
    /* GENERATED ALWAYS AS (expr) or GENERATED ALWAYS AS IDENTITY: the
     * database writes it; a command may not, and no statement names it */
    int generated;
    /* field-encrypted (pgscribe.column_policy.encrypt on a bytea column,
     * what `pgscribe keys protect` makes): a command's value is checked
     * against the plain type, sealed at intake (catalog/fieldseal.h) and
     * bound as bytea */
    int sealed;
    char *plain_type;   /* format_type() text of the column's clear type */
    unsigned plain_oid; /* its pg_type oid */
} pgs_column_t;

typedef struct pgs_entity_s {
    char *name;
    pgs_column_t *cols;
    int ncols;
    int *pk;            /* indexes into cols, in primary key order */
    int npk;            /* primary key columns other than clinic_id */
    int clinic_col;     /* index of clinic_id */
    int version_col;    /* index of "version" (bigint/int), or -1 */
    int updated_at_col; /* index of "updated_at", or -1 */
} pgs_entity_t;

typedef struct pgs_catalog_s pgs_catalog_t;

/** @brief Empty catalog for schema @p schema (tests build one by hand). */
pgs_catalog_t *pgs_catalog_new(const char *schema);
void pgs_catalog_free(pgs_catalog_t *cat);
/** @brief One more holder of pointers into @p cat (a work); returns @p cat. */
pgs_catalog_t *pgs_catalog_ref(pgs_catalog_t *cat);
/** @brief That holder is gone. */
void pgs_catalog_unref(pgs_catalog_t *cat);
/** @returns the holders of @p cat: a retired catalog with none can be freed. */
size_t pgs_catalog_refs(const pgs_catalog_t *cat);
const char *pgs_catalog_schema(const pgs_catalog_t *cat);
pgs_entity_t *pgs_catalog_add_entity(pgs_catalog_t *cat, const char *name);
/** @brief Appends a column; recomputes pk, clinic_col, version_col, updated_at_col. */
void pgs_catalog_entity_add_column(pgs_entity_t *ent, const char *name, const char *type_sql,
                                   unsigned type_oid, int is_pk, int not_null, int has_default,
                                   int is_phi);

/** What the catalog learns of one table before calling it an entity. */
typedef struct {
    int has_clinic;    /* a clinic_id column */
    int has_pk;        /* a primary key */
    int rls;           /* relrowsecurity */
    int force_rls;     /* relforcerowsecurity: the owner is bound too */
    int walled_policy; /* a policy of the worker reads current_setting('pgscribe.clinic_id') */
    int open_policy;   /* a permissive policy of the worker whose expression does not */
} pgs_table_facts_t;

/** @returns why a table with @p facts is not an entity, or NULL when it is. */
const char *pgs_catalog_table_problem(const pgs_table_facts_t *facts);

/** @returns nonzero when clinic_id is part of @p ent's primary key. */
/** @brief Marks column @p col of @p ent generated (see pgs_column_t). */
void pgs_catalog_entity_set_generated(pgs_entity_t *ent, int col);
int pgs_catalog_entity_pk_has_clinic(const pgs_entity_t *ent);
/** @brief Marks column @p col of @p ent field-encrypted, its clear type
 *         being @p plain_type (oid @p plain_oid). */
void pgs_catalog_entity_set_sealed(pgs_entity_t *ent, int col, const char *plain_type,
                                   unsigned plain_oid);
/** @returns nonzero when @p ent has a field-encrypted column. */
int pgs_catalog_entity_has_sealed(const pgs_entity_t *ent);

/**
 * @brief Introspects @p schema over a blocking connection: a table is an
 *        entity when it has a clinic_id column, a primary key, row-level
 *        security enabled and forced, a policy reading the pgscribe clinic
 *        setting and no permissive policy that does not, counting the
 *        policies that apply to the connected role (see
 *        pgs_catalog_table_problem); every other table is skipped with a
 *        warning naming it and why. An entity whose primary key omits
 *        clinic_id is warned about. Then checks the connected role (see
 *        pgs_catalog_check_role).
 * @returns a catalog, or NULL with the reason in @p errstr.
 */
pgs_catalog_t *pgs_catalog_load(PGconn *conn, const char *schema, char *errstr, size_t errstr_size);
/**
 * @brief pgs_catalog_load, unless the schema's introspection gives the same
 *        answer as the catalog whose fingerprint is @p known (0: none known):
 *        then nothing is built or warned about again, and NULL is returned
 *        with *unchanged set to 1 and @p errstr untouched.
 * @returns a new catalog (*unchanged 0), or NULL: unchanged, or an error
 *          with the reason in @p errstr (*unchanged 0).
 */
pgs_catalog_t *pgs_catalog_load_changed(PGconn *conn, const char *schema, uint64_t known,
                                        int *unchanged, char *errstr, size_t errstr_size);
/** @returns the fingerprint of the schema answer @p cat was built from
 *           (0 for a catalog not loaded from a database). */
uint64_t pgs_catalog_fingerprint(const pgs_catalog_t *cat);

/**
 * @brief Refuses a role that row-level security would not bind: a superuser,
 *        a role with BYPASSRLS, one that is a member of such a role, or one
 *        that owns (or is a member of the owner of) an entity table of @p cat.
 * @returns 0, or -1 with one line naming the role and the reason in @p errstr.
 */
int pgs_catalog_check_role(PGconn *conn, const pgs_catalog_t *cat, char *errstr,
                           size_t errstr_size);

/**
 * @brief Refuses a database older than this worker: every pgscribe function,
 *        table and column its generated statements name must exist (else
 *        each PREPARE would fail with a permanent error and dead-letter
 *        every command).
 * @returns 0, or -1 naming what is missing and the migration that makes it.
 */
int pgs_catalog_check_schema(PGconn *conn, char *errstr, size_t errstr_size);

const pgs_entity_t *pgs_catalog_find(const pgs_catalog_t *cat, const char *entity);
size_t pgs_catalog_entity_count(const pgs_catalog_t *cat);
const pgs_entity_t *pgs_catalog_entity_at(const pgs_catalog_t *cat, size_t i);
/** @returns column index in @p ent, or -1. */
int pgs_catalog_entity_column(const pgs_entity_t *ent, const char *name);
/**
 * @brief The index of field @p f's column in @p ent: the one
 *        pgs_catalog_validate found when it accepted @p cmd for @p ent, else
 *        looked up by name (a clinic_id field, or another entity).
 * @returns -1 if @p ent has no such column.
 */
static inline int pgs_catalog_field_column(const pgs_entity_t *ent, const pgs_command_t *cmd,
                                           const pgs_field_t *f)
{
    return cmd->cols_of == ent && f->col > 0 ? f->col - 1 : pgs_catalog_entity_column(ent, f->name);
}

/**
 * @brief Checks a decoded command against the catalog (see docs/semantics.md, "Validation").
 * @returns PGS_OK and *entp, or a validate/tenant error; @p errstr names the
 *          entity/column at fault, never a value.
 */
pgs_err_t pgs_catalog_validate(const pgs_catalog_t *cat, pgs_command_t *cmd,
                               const pgs_entity_t **entp, char *errstr, size_t errstr_size);

#endif
