/* Validation: a decoded command checked against the catalog before any SQL. */
#include "catalog/catalog.h"

#include "common/hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_TEXT    25
#define OID_BPCHAR  1042
#define OID_VARCHAR 1043

/* Longest name quoted in an error: a PostgreSQL identifier has at most 63
 * bytes, and a longer name from a message is not worth echoing in full. */
#define NAME_MAX_SHOWN 64

/* A name from a message that is no catalog name is never echoed: it could be
 * a value put in the wrong place (a patient's name as a column name) and so
 * carry PHI into logs and dead-letter headers. Its length and a short digest
 * (FNV-1a, enough to tell two bad names apart) are told instead. */
static const char *unknown_name(const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    uint64_t h = pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, name, n);
    snprintf(buf, size, "(unknown name, %zu bytes, digest %08" PRIx32 ")", n, (uint32_t)(h >> 32));
    return buf;
}

static pgs_err_t fail(pgs_err_t err, char *errstr, size_t errstr_size, const char *entity,
                      const char *what, const char *column)
{
    if (column)
        snprintf(errstr, errstr_size, "entity \"%.*s\": %s \"%.*s\"", NAME_MAX_SHOWN, entity, what,
                 NAME_MAX_SHOWN, column);
    else
        snprintf(errstr, errstr_size, "entity \"%.*s\": %s", NAME_MAX_SHOWN, entity, what);
    return err;
}

/* An unknown column named in a message: see unknown_name. */
static pgs_err_t fail_unknown(pgs_err_t err, char *errstr, size_t errstr_size, const char *entity,
                              const char *what, const char *column)
{
    char shown[80];
    snprintf(errstr, errstr_size, "entity \"%.*s\": %s %s", NAME_MAX_SHOWN, entity, what,
             unknown_name(column, shown, sizeof(shown)));
    return err;
}

static int is_pk_col(const pgs_entity_t *ent, int col)
{
    for (int i = 0; i < ent->npk; i++) {
        if (ent->pk[i] == col)
            return 1;
    }
    return 0;
}

/* A clinic_id in key or data is tolerated only as a repeat of the command's. */
static int clinic_matches(const pgs_command_t *cmd, const pgs_value_t *v)
{
    return v->type == PGS_VAL_STRING && cmd->clinic_id && strcmp(v->u.s.ptr, cmd->clinic_id) == 0;
}

static int is_reserved(const pgs_entity_t *ent, int col)
{
    const char *name = ent->cols[col].name;
    return col == ent->version_col || strcmp(name, "created_at") == 0 ||
           strcmp(name, "updated_at") == 0;
}

/* Only the types whose text form PostgreSQL's input functions cannot be
 * trusted to reject are checked here; everything else is the column's job. */
static const char *type_problem(const pgs_column_t *col, const pgs_value_t *v)
{
    if (v->type == PGS_VAL_NULL)
        return NULL;
    /* a sealed column takes values of its clear type; the bytea is ours */
    unsigned oid = col->sealed ? col->plain_oid : col->type_oid;
    if (oid == OID_BYTEA && v->type != PGS_VAL_BYTES)
        return "non-bytes value for bytea column";
    if (v->type == PGS_VAL_BYTES && oid != OID_BYTEA)
        return "bytes value for non-bytea column";
    if (v->type == PGS_VAL_BOOL && oid != OID_BOOL && oid != OID_TEXT && oid != OID_VARCHAR &&
        oid != OID_BPCHAR)
        return "boolean value for non-boolean column";
    return NULL;
}

static pgs_err_t check_key(const pgs_entity_t *ent, const pgs_command_t *cmd, char *errstr,
                           size_t errstr_size)
{
    int found = 0;
    for (size_t i = 0; i < cmd->key_cnt; i++) {
        const pgs_field_t *f = &cmd->key[i];
        if (strcmp(f->name, "clinic_id") == 0) {
            if (!clinic_matches(cmd, &f->value))
                return fail(PGS_E_TENANT_MISMATCH, errstr, errstr_size, ent->name,
                            "key column differs from the command's clinic", f->name);
            continue;
        }
        int col = pgs_catalog_entity_column(ent, f->name);
        if (col < 0)
            return fail_unknown(PGS_E_VALIDATE_UNKNOWN_COLUMN, errstr, errstr_size, ent->name,
                                "unknown key column", f->name);
        cmd->key[i].col = col + 1;
        if (!is_pk_col(ent, col))
            return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                        "not a primary key column", f->name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cmd->key[j].name, f->name) == 0)
                return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                            "duplicate key column", f->name);
        }
        if (f->value.type == PGS_VAL_NULL)
            return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                        "null key column", f->name);
        const char *problem = type_problem(&ent->cols[col], &f->value);
        if (problem)
            return fail(PGS_E_VALIDATE_TYPE, errstr, errstr_size, ent->name, problem, f->name);
        found++;
    }
    if (found != ent->npk) {
        for (int i = 0; i < ent->npk; i++) {
            const char *name = ent->cols[ent->pk[i]].name;
            size_t j = 0;
            while (j < cmd->key_cnt && strcmp(cmd->key[j].name, name) != 0)
                j++;
            if (j == cmd->key_cnt)
                return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                            "missing key column", name);
        }
    }
    return PGS_OK;
}

/* Checks each data field; sets *ndata to the fields that will be written
 * (a repeated clinic_id is not one) and marks their columns in @p cols. */
static pgs_err_t check_data(const pgs_entity_t *ent, const pgs_command_t *cmd, int *cols,
                            int *ndata, char *errstr, size_t errstr_size)
{
    *ndata = 0;
    for (size_t i = 0; i < cmd->data_cnt; i++) {
        const pgs_field_t *f = &cmd->data[i];
        if (strcmp(f->name, "clinic_id") == 0) {
            if (!clinic_matches(cmd, &f->value))
                return fail(PGS_E_TENANT_MISMATCH, errstr, errstr_size, ent->name,
                            "data column differs from the command's clinic", f->name);
            continue;
        }
        int col = pgs_catalog_entity_column(ent, f->name);
        if (col < 0)
            return fail_unknown(PGS_E_VALIDATE_UNKNOWN_COLUMN, errstr, errstr_size, ent->name,
                                "unknown column", f->name);
        cmd->data[i].col = col + 1;
        if (is_pk_col(ent, col))
            return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                        "primary key column in data", f->name);
        if (is_reserved(ent, col))
            return fail(PGS_E_VALIDATE_RESERVED_COLUMN, errstr, errstr_size, ent->name,
                        "column managed by pgscribe", f->name);
        if (ent->cols[col].generated)
            return fail(PGS_E_VALIDATE_GENERATED_COLUMN, errstr, errstr_size, ent->name,
                        "generated column, written by the database", f->name);
        for (int j = 0; j < *ndata; j++) {
            if (cols[j] == col)
                return fail(PGS_E_VALIDATE_KEY_MISMATCH, errstr, errstr_size, ent->name,
                            "duplicate column", f->name);
        }
        const pgs_column_t *c = &ent->cols[col];
        if (f->value.type == PGS_VAL_NULL && c->not_null)
            return fail(PGS_E_VALIDATE_MISSING_COLUMN, errstr, errstr_size, ent->name,
                        "null for not-null column", f->name);
        const char *problem = type_problem(c, &f->value);
        if (problem)
            return fail(PGS_E_VALIDATE_TYPE, errstr, errstr_size, ent->name, problem, f->name);
        cols[(*ndata)++] = col;
    }
    return PGS_OK;
}

/* An INSERT must name every column the database cannot fill by itself. The
 * reserved columns are left to the database: a message may not set them. */
static pgs_err_t check_required(const pgs_entity_t *ent, const int *cols, int ndata, char *errstr,
                                size_t errstr_size)
{
    for (int i = 0; i < ent->ncols; i++) {
        const pgs_column_t *c = &ent->cols[i];
        if (!c->not_null || c->has_default || i == ent->clinic_col || is_pk_col(ent, i) ||
            is_reserved(ent, i))
            continue;
        int present = 0;
        for (int j = 0; j < ndata && !present; j++)
            present = cols[j] == i;
        if (!present)
            return fail(PGS_E_VALIDATE_MISSING_COLUMN, errstr, errstr_size, ent->name,
                        "missing required column", c->name);
    }
    return PGS_OK;
}

pgs_err_t pgs_catalog_validate(const pgs_catalog_t *cat, pgs_command_t *cmd,
                               const pgs_entity_t **entp, char *errstr, size_t errstr_size)
{
    /* The clinic is part of every lane key and the tenant of the transaction:
     * nothing is looked up for a clinic id that could not be one. */
    if (!pgs_command_clinic_id_valid(cmd->clinic_id)) {
        snprintf(errstr, errstr_size,
                 "clinic_id must be 1 to %d bytes without control characters (%zu bytes)",
                 PGS_CLINIC_ID_MAX, cmd->clinic_id ? strlen(cmd->clinic_id) : 0);
        return PGS_E_VALIDATE_BAD_CLINIC_ID;
    }
    cmd->cols_of = NULL;
    const char *entity = cmd->entity ? cmd->entity : "";
    const pgs_entity_t *ent = pgs_catalog_find(cat, entity);
    if (!ent) {
        char shown[80];
        snprintf(errstr, errstr_size, "unknown entity %s",
                 unknown_name(entity, shown, sizeof(shown)));
        return PGS_E_VALIDATE_UNKNOWN_ENTITY;
    }
    /* The only bound on data size before any per-column work; the statement
     * shape holds at most this many columns. */
    if (cmd->data_cnt > (size_t)PGS_MAX_DATA_COLS)
        return fail(PGS_E_VALIDATE_UNEXPECTED_DATA, errstr, errstr_size, ent->name,
                    "too many columns", NULL);

    pgs_err_t err = check_key(ent, cmd, errstr, errstr_size);
    if (err)
        return err;

    int cols[PGS_MAX_DATA_COLS];
    int ndata;
    err = check_data(ent, cmd, cols, &ndata, errstr, errstr_size);
    if (err)
        return err;

    switch (cmd->op) {
    case PGS_OP_INSERT:
    case PGS_OP_UPSERT:
        err = check_required(ent, cols, ndata, errstr, errstr_size);
        if (err)
            return err;
        break;
    case PGS_OP_UPDATE:
        if (ndata == 0)
            return fail(PGS_E_VALIDATE_NO_DATA, errstr, errstr_size, ent->name,
                        "UPDATE sets no column", NULL);
        break;
    case PGS_OP_DELETE:
        if (ndata > 0)
            return fail(PGS_E_VALIDATE_UNEXPECTED_DATA, errstr, errstr_size, ent->name,
                        "DELETE with data", NULL);
        break;
    default:
        return fail(PGS_E_VALIDATE_UNEXPECTED_DATA, errstr, errstr_size, ent->name, "unknown op",
                    NULL);
    }

    if (cmd->has_expected_version) {
        if (ent->version_col < 0)
            return fail(PGS_E_VALIDATE_NO_VERSION, errstr, errstr_size, ent->name,
                        "expected_version on an entity without a version column", NULL);
        if (cmd->op == PGS_OP_INSERT)
            return fail(PGS_E_VALIDATE_UNEXPECTED_DATA, errstr, errstr_size, ent->name,
                        "expected_version on INSERT", NULL);
    }

    /* A statement's bind array holds fixed + key + data + expected_version. */
    if ((size_t)ent->npk + (size_t)ndata > PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS)
        return fail(PGS_E_VALIDATE_UNEXPECTED_DATA, errstr, errstr_size, ent->name,
                    "too many columns", NULL);

    if (entp)
        *entp = ent;
    cmd->cols_of = ent;
    return PGS_OK;
}
