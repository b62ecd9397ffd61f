/* SQL generation: statement text per command shape, and its bind parameters. */
#include "sql/sqlgen.h"
#include "catalog/digest.h"
#include "common/hash.h"
#include "common/sbuf.h"
#include "common/numtext.h"
#include "sql/sqlenvelope.h"
#include "codec/value.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE_MAX_COLS ((int)(sizeof(((pgs_shape_t *)0)->cols) / sizeof(int)))
#define PARAMS_MAX     ((int)(sizeof(((pgs_params_t *)0)->values) / sizeof(const char *)))

/* ---- shapes ---- */

int pgs_sqlgen_shape_of(const pgs_entity_t *ent, const pgs_command_t *cmd, pgs_shape_t *shape)
{
    memset(shape, 0, sizeof(*shape));
    shape->ent = ent;
    shape->op = cmd->op;
    shape->has_expected_version = cmd->has_expected_version ? 1 : 0;
    for (size_t i = 0; i < cmd->data_cnt; i++) {
        /* validation allowed only a repeat of the command's clinic_id */
        if (strcmp(cmd->data[i].name, "clinic_id") == 0)
            continue;
        int col = pgs_catalog_field_column(ent, cmd, &cmd->data[i]);
        if (col < 0 || shape->ncols == SHAPE_MAX_COLS)
            return -1;
        int j = shape->ncols++;
        while (j > 0 && shape->cols[j - 1] > col) {
            shape->cols[j] = shape->cols[j - 1];
            j--;
        }
        shape->cols[j] = col;
    }
    if (PGS_PARAM_FIXED_COUNT + ent->npk + shape->ncols + 2 > PARAMS_MAX)
        return -1;

    uint64_t h = PGS_HASH_FNV1A64_INIT;
    h = pgs_hash_fnv1a64(h, ent->name, strlen(ent->name) + 1);
    unsigned char op = (unsigned char)shape->op, ev = (unsigned char)shape->has_expected_version;
    h = pgs_hash_fnv1a64(h, &op, 1);
    h = pgs_hash_fnv1a64(h, &ev, 1);
    for (int i = 0; i < shape->ncols; i++) {
        uint32_t c = (uint32_t)shape->cols[i];
        h = pgs_hash_fnv1a64(h, &c, sizeof(c));
    }
    shape->hash = h;
    return 0;
}

int pgs_sqlgen_shape_equal(const pgs_shape_t *a, const pgs_shape_t *b)
{
    return a->hash == b->hash && a->ent == b->ent && a->op == b->op &&
           a->has_expected_version == b->has_expected_version && a->ncols == b->ncols &&
           memcmp(a->cols, b->cols, (size_t)a->ncols * sizeof(int)) == 0;
}

/* ---- statement text ---- */

static void sb_ident(pgs_sbuf_t *sb, const char *s)
{
    pgs_sbuf_quoted(sb, s, '"');
}

/* `$n::type` for column @p col. */
static void sb_param(pgs_sbuf_t *sb, int n, const pgs_column_t *col)
{
    pgs_sbuf_printf(sb, "$%d::%s", n, col->type_sql);
}

static void sb_clinic_param(pgs_sbuf_t *sb, const pgs_entity_t *ent)
{
    pgs_sbuf_printf(sb, "$2::%s",
                    ent->clinic_col >= 0 ? ent->cols[ent->clinic_col].type_sql : "text");
}

/* `"pk1" = $8::type AND ... "clinic_id" = $2::type [AND "version" = $N::bigint]` */
static void sb_row_match(pgs_sbuf_t *sb, const pgs_shape_t *shape, int version_param)
{
    const pgs_entity_t *ent = shape->ent;
    for (int i = 0; i < ent->npk; i++) {
        const pgs_column_t *c = &ent->cols[ent->pk[i]];
        sb_ident(sb, c->name);
        pgs_sbuf_puts(sb, " = ");
        sb_param(sb, PGS_PARAM_FIXED_COUNT + 1 + i, c);
        pgs_sbuf_puts(sb, " AND ");
    }
    pgs_sbuf_puts(sb, "\"clinic_id\" = ");
    sb_clinic_param(sb, ent);
    if (shape->has_expected_version) {
        pgs_sbuf_puts(sb, " AND ");
        sb_ident(sb, ent->cols[ent->version_col].name);
        pgs_sbuf_printf(sb, " = $%d::bigint", version_param);
    }
}

static void sb_insert(pgs_sbuf_t *sb, const char *schema, const pgs_shape_t *shape, int first_data)
{
    const pgs_entity_t *ent = shape->ent;
    pgs_sbuf_puts(sb, "INSERT INTO ");
    sb_ident(sb, schema);
    pgs_sbuf_puts(sb, ".");
    sb_ident(sb, ent->name);
    pgs_sbuf_puts(sb, " AS t (\"clinic_id\"");
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_puts(sb, ", ");
        sb_ident(sb, ent->cols[ent->pk[i]].name);
    }
    for (int i = 0; i < shape->ncols; i++) {
        pgs_sbuf_puts(sb, ", ");
        sb_ident(sb, ent->cols[shape->cols[i]].name);
    }
    pgs_sbuf_puts(sb, ")\n    SELECT ");
    sb_clinic_param(sb, ent);
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_puts(sb, ", ");
        sb_param(sb, PGS_PARAM_FIXED_COUNT + 1 + i, &ent->cols[ent->pk[i]]);
    }
    for (int i = 0; i < shape->ncols; i++) {
        pgs_sbuf_puts(sb, ", ");
        sb_param(sb, first_data + i, &ent->cols[shape->cols[i]]);
    }
    pgs_sbuf_puts(sb, " WHERE EXISTS (SELECT 1 FROM ins)");
}

/* The conflict target must match the primary key exactly, so clinic_id is
 * named when it is part of it. A conflicting row of another clinic already
 * fails row-level security (SQLSTATE 42501, checked before this WHERE); the
 * clinic condition keeps the wall even where RLS is not in force, and then
 * the update touches nothing and expect_rows raises PS001. */
static void sb_upsert_tail(pgs_sbuf_t *sb, const pgs_shape_t *shape, int version_param)
{
    const pgs_entity_t *ent = shape->ent;
    const char *sep = "";
    pgs_sbuf_puts(sb, "\n    ON CONFLICT (");
    if (ent->clinic_col >= 0 && ent->cols[ent->clinic_col].is_pk) {
        pgs_sbuf_puts(sb, "\"clinic_id\"");
        sep = ", ";
    }
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_puts(sb, sep);
        sb_ident(sb, ent->cols[ent->pk[i]].name);
        sep = ", ";
    }
    pgs_sbuf_puts(sb, ") DO UPDATE SET ");
    sep = "";
    for (int i = 0; i < shape->ncols; i++) {
        const char *name = ent->cols[shape->cols[i]].name;
        pgs_sbuf_puts(sb, sep);
        sb_ident(sb, name);
        pgs_sbuf_puts(sb, " = EXCLUDED.");
        sb_ident(sb, name);
        sep = ", ";
    }
    if (ent->version_col >= 0) {
        pgs_sbuf_puts(sb, sep);
        sb_ident(sb, ent->cols[ent->version_col].name);
        pgs_sbuf_puts(sb, " = t.");
        sb_ident(sb, ent->cols[ent->version_col].name);
        pgs_sbuf_puts(sb, " + 1");
        sep = ", ";
    }
    if (ent->updated_at_col >= 0) {
        pgs_sbuf_puts(sb, sep);
        sb_ident(sb, ent->cols[ent->updated_at_col].name);
        pgs_sbuf_puts(sb, " = now()");
        sep = ", ";
    }
    if (!*sep) /* a no-op update, so that RETURNING still yields the row */
        pgs_sbuf_puts(sb, "\"clinic_id\" = EXCLUDED.\"clinic_id\"");
    pgs_sbuf_puts(sb, "\n    WHERE t.\"clinic_id\" = ");
    sb_clinic_param(sb, ent);
    if (shape->has_expected_version) {
        pgs_sbuf_puts(sb, " AND t.");
        sb_ident(sb, ent->cols[ent->version_col].name);
        pgs_sbuf_printf(sb, " = $%d::bigint", version_param);
    }
}

static void sb_update(pgs_sbuf_t *sb, const char *schema, const pgs_shape_t *shape, int first_data,
                      int version_param)
{
    const pgs_entity_t *ent = shape->ent;
    pgs_sbuf_puts(sb, "UPDATE ");
    sb_ident(sb, schema);
    pgs_sbuf_puts(sb, ".");
    sb_ident(sb, ent->name);
    pgs_sbuf_puts(sb, " SET ");
    for (int i = 0; i < shape->ncols; i++) {
        const pgs_column_t *c = &ent->cols[shape->cols[i]];
        if (i)
            pgs_sbuf_puts(sb, ", ");
        sb_ident(sb, c->name);
        pgs_sbuf_puts(sb, " = ");
        sb_param(sb, first_data + i, c);
    }
    if (ent->version_col >= 0) {
        const char *v = ent->cols[ent->version_col].name;
        pgs_sbuf_puts(sb, ", ");
        sb_ident(sb, v);
        pgs_sbuf_puts(sb, " = ");
        sb_ident(sb, v);
        pgs_sbuf_puts(sb, " + 1");
    }
    if (ent->updated_at_col >= 0) {
        pgs_sbuf_puts(sb, ", ");
        sb_ident(sb, ent->cols[ent->updated_at_col].name);
        pgs_sbuf_puts(sb, " = now()");
    }
    pgs_sbuf_puts(sb, "\n    WHERE ");
    sb_row_match(sb, shape, version_param);
    pgs_sbuf_puts(sb, " AND EXISTS (SELECT 1 FROM ins)");
}

static void sb_delete(pgs_sbuf_t *sb, const char *schema, const pgs_shape_t *shape,
                      int version_param)
{
    pgs_sbuf_puts(sb, "DELETE FROM ");
    sb_ident(sb, schema);
    pgs_sbuf_puts(sb, ".");
    sb_ident(sb, shape->ent->name);
    pgs_sbuf_puts(sb, "\n    WHERE ");
    sb_row_match(sb, shape, version_param);
    pgs_sbuf_puts(sb, " AND EXISTS (SELECT 1 FROM ins)");
}

/* The write inside the envelope (sqlenvelope.c), which records the command
 * id in the same statement, so a command is never half-applied and a
 * redelivery (ins empty) changes nothing. */
char *pgs_sqlgen_statement(const char *schema, const pgs_shape_t *shape)
{
    const pgs_entity_t *ent = shape->ent;
    int first_data = PGS_PARAM_FIXED_COUNT + 1 + ent->npk;
    int version_param = first_data + shape->ncols;
    pgs_sbuf_t w = {0};
    switch (shape->op) {
    case PGS_OP_INSERT:
        sb_insert(&w, schema, shape, first_data);
        break;
    case PGS_OP_UPSERT:
        sb_insert(&w, schema, shape, first_data);
        sb_upsert_tail(&w, shape, version_param);
        break;
    case PGS_OP_UPDATE:
        sb_update(&w, schema, shape, first_data, version_param);
        break;
    case PGS_OP_DELETE:
        sb_delete(&w, schema, shape, version_param);
        break;
    }
    char *sql = pgs_sqlenvelope_statement(NULL, pgs_sqlgen_digest_param(shape), w.buf);
    free(w.buf);
    return sql;
}

int pgs_sqlgen_digest_param(const pgs_shape_t *shape)
{
    return PGS_PARAM_FIXED_COUNT + shape->ent->npk + shape->ncols + shape->has_expected_version + 1;
}

void pgs_sqlgen_digest_hex(const pgs_entity_t *ent, const pgs_command_t *cmd,
                           char out[PGS_SQLGEN_DIGEST_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[PGS_DIGEST_SIZE];
    if (cmd->digest)
        memcpy(d, cmd->digest, PGS_DIGEST_SIZE);
    else
        pgs_digest_command(ent, cmd, d);
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < PGS_DIGEST_SIZE; i++) {
        out[2 + 2 * i] = hex[d[i] >> 4];
        out[3 + 2 * i] = hex[d[i] & 15];
    }
    out[2 + 2 * PGS_DIGEST_SIZE] = '\0';
}

/* ---- bind parameters ---- */

/* Copies @p len bytes (plus NUL) into the params' scratch, or into the
 * command's arena once scratch is full. */
static const char *params_keep(pgs_params_t *params, pgs_arena_t *arena, const char *s, size_t len)
{
    if (params->scratch_used + len + 1 <= sizeof(params->scratch)) {
        char *p = params->scratch + params->scratch_used;
        memcpy(p, s, len);
        p[len] = '\0';
        params->scratch_used += len + 1;
        return p;
    }
    return pgs_arena_strndup(arena, s, len);
}

static void params_text(pgs_params_t *params, const char *value, int len)
{
    params->values[params->n] = value;
    params->lengths[params->n] = len;
    params->formats[params->n] = 0;
    params->n++;
}

static void params_long(pgs_params_t *params, pgs_arena_t *arena, int64_t v)
{
    char buf[PGS_NUMTEXT_MAX];
    size_t n = pgs_numtext_i64(v, buf);
    params_text(params, params_keep(params, arena, buf, n), (int)n);
}

static void params_value(pgs_params_t *params, pgs_arena_t *arena, const pgs_value_t *v)
{
    char buf[PGS_VALUE_TEXT_MAX];
    size_t n;
    const char *text;
    switch (v ? v->type : PGS_VAL_NULL) {
    case PGS_VAL_NULL:
        params_text(params, NULL, 0);
        break;
    case PGS_VAL_BYTES:
        /* a NULL pointer would make libpq send SQL NULL, not empty bytea */
        params->values[params->n] = v->u.s.ptr ? v->u.s.ptr : "";
        params->lengths[params->n] = (int)v->u.s.len;
        params->formats[params->n] = 1;
        params->n++;
        break;
    default:
        text = pgs_value_text(v, buf, &n);
        if (text == buf)
            text = params_keep(params, arena, buf, n);
        params_text(params, text, (int)n);
        break;
    }
}

/* ---- row key JSON, for the audit row ---- */

/* Worst case: every byte escaped as \u00XX, plus the quotes. */
static size_t json_str_bound(size_t len)
{
    return 6 * len + 2;
}

static char *json_put_str(char *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20) {
            *o++ = '\\';
            switch (ch) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[ch >> 4];
                *o++ = hex[ch & 15];
            }
        } else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    return o;
}

static char *json_put_base64(char *o, const unsigned char *s, size_t len)
{
    *o++ = '"';
    o += EVP_EncodeBlock((unsigned char *)o, s, (int)len);
    *o++ = '"';
    return o;
}

/* Compact JSON of the key map, in message order. Doubles that JSON cannot
 * hold (NaN, infinities) become their PostgreSQL spellings as strings. */
const char *pgs_sqlgen_row_key_json(const pgs_command_t *cmd)
{
    size_t bound = 3;
    for (size_t i = 0; i < cmd->key_cnt; i++) {
        const pgs_field_t *f = &cmd->key[i];
        bound += json_str_bound(strlen(f->name)) + 2;
        if (f->value.type == PGS_VAL_STRING)
            bound += json_str_bound(f->value.u.s.len);
        else if (f->value.type == PGS_VAL_BYTES)
            bound += 4 * ((f->value.u.s.len + 2) / 3) + 2;
        else
            bound += 40;
    }
    char *out = pgs_arena_alloc(cmd->arena, bound);
    char *o = out;
    *o++ = '{';
    for (size_t i = 0; i < cmd->key_cnt; i++) {
        const pgs_field_t *f = &cmd->key[i];
        const pgs_value_t *v = &f->value;
        if (i)
            *o++ = ',';
        o = json_put_str(o, f->name, strlen(f->name));
        *o++ = ':';
        switch (v->type) {
        case PGS_VAL_NULL:
            o += sprintf(o, "null");
            break;
        case PGS_VAL_BOOL:
        case PGS_VAL_LONG:
        case PGS_VAL_DOUBLE: {
            char buf[PGS_VALUE_TEXT_MAX];
            size_t n;
            const char *text = pgs_value_text(v, buf, &n);
            int quote = v->type == PGS_VAL_DOUBLE && pgs_value_double_special(v->u.d);
            if (quote)
                *o++ = '"';
            memcpy(o, text, n);
            o += n;
            if (quote)
                *o++ = '"';
            break;
        }
        case PGS_VAL_STRING:
            o = json_put_str(o, v->u.s.ptr, v->u.s.len);
            break;
        case PGS_VAL_BYTES:
            o = json_put_base64(o, (const unsigned char *)v->u.s.ptr, v->u.s.len);
            break;
        }
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

void pgs_sqlgen_params(const pgs_shape_t *shape, const pgs_command_t *cmd, const char *topic,
                       int32_t partition, int64_t offset, pgs_params_t *params)
{
    const pgs_entity_t *ent = shape->ent;
    params->n = 0;
    params->scratch_used = 0;

    params_text(params, cmd->command_id, 0);
    params_text(params, cmd->clinic_id, 0);
    params_text(params, topic, 0);
    params_long(params, cmd->arena, partition);
    params_long(params, cmd->arena, offset);

    for (int i = 0; i < ent->npk; i++) {
        params_value(params, cmd->arena,
                     pgs_command_field(cmd->key, cmd->key_cnt, ent->cols[ent->pk[i]].name));
    }
    for (int i = 0; i < shape->ncols; i++) {
        params_value(params, cmd->arena,
                     pgs_command_field(cmd->data, cmd->data_cnt, ent->cols[shape->cols[i]].name));
    }
    if (shape->has_expected_version)
        params_long(params, cmd->arena, cmd->expected_version);
    char digest[PGS_SQLGEN_DIGEST_HEX_SIZE];
    pgs_sqlgen_digest_hex(ent, cmd, digest);
    params_text(params, params_keep(params, cmd->arena, digest, strlen(digest)),
                (int)strlen(digest));
}
