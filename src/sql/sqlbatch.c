/* Multi-row statements over arrays: one statement per batch shape per
 * transaction instead of one per command. See include/pgscribe/sqlbatch.h. */
#include "sql/sqlbatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/numtext.h"
#include "common/sbuf.h"
#include "common/xalloc.h"
#include "sql/sqlenvelope.h"

static int is_array_type(const pgs_column_t *c)
{
    size_t n = strlen(c->type_sql);
    return n >= 2 && c->type_sql[n - 1] == ']';
}

/* Columns an UPDATE may set: everything but the key, clinic_id and the
 * columns pgscribe manages. */
static int updatable(const pgs_entity_t *ent, int i)
{
    const pgs_column_t *c = &ent->cols[i];
    return !c->is_pk && !c->generated && i != ent->clinic_col && i != ent->version_col &&
           i != ent->updated_at_col && strcmp(c->name, "created_at") != 0;
}

int pgs_sqlbatch_shape_of(const pgs_entity_t *ent, const pgs_command_t *cmd,
                          const pgs_shape_t *single, pgs_bshape_t *bs)
{
    (void)cmd;
    memset(bs, 0, sizeof(*bs));
    if (single->op == PGS_OP_UPSERT && single->has_expected_version && ent->version_col < 0)
        return -1;
    for (int i = 0; i < ent->npk; i++) {
        if (is_array_type(&ent->cols[ent->pk[i]]))
            return -1;
    }
    for (int i = 0; i < single->ncols; i++) {
        if (is_array_type(&ent->cols[single->cols[i]]))
            return -1;
    }
    bs->shape = *single;
    if (single->op == PGS_OP_INSERT || single->op == PGS_OP_UPSERT) {
        /* One statement per table and set of DEFAULTed columns given: a
         * column without a DEFAULT is always listed (absent is NULL, which
         * is what leaving it out inserts), one with a DEFAULT only when the
         * command gives it, so that an absent one keeps its DEFAULT. The
         * mask says which columns each row gave: an UPSERT's conflict
         * update reads it. */
        bs->mask = 1;
        bs->shape.ncols = 0;
        int given = 0;
        for (int i = 0; i < ent->ncols; i++) {
            const pgs_column_t *c = &ent->cols[i];
            int in_single = given < single->ncols && single->cols[given] == i;
            given += in_single;
            int managed = c->is_pk || c->generated || i == ent->clinic_col;
            if (in_single && managed)
                return -1; /* validation lets none of these through */
            if (managed || is_array_type(c) || (c->has_default && !in_single))
                continue;
            if (bs->shape.ncols == 64)
                return -1;
            bs->shape.cols[bs->shape.ncols++] = i;
        }
        if (given != single->ncols)
            return -1; /* a given column the loop did not list (not expected) */
    } else if (single->op == PGS_OP_UPDATE) {
        bs->mask = 1;
        bs->shape.ncols = 0;
        for (int i = 0; i < ent->ncols; i++) {
            if (!updatable(ent, i) || is_array_type(&ent->cols[i]))
                continue;
            if (bs->shape.ncols == 64)
                return -1;
            bs->shape.cols[bs->shape.ncols++] = i;
        }
    }
    /* versioned and unversioned commands share a statement: a NULL
     * expected version matches any */
    if (single->op != PGS_OP_INSERT && ent->version_col >= 0)
        bs->shape.has_expected_version = 1;
    /* from the batch shape alone: partial UPDATEs of one entity, whose
     * single shapes differ, must land on the same statement */
    uint64_t h = PGS_HASH_FNV1A64_INIT;
    int32_t parts[4] = {(int32_t)single->op, bs->shape.has_expected_version, bs->mask,
                        bs->shape.ncols};
    h = pgs_hash_fnv1a64(h, &ent, sizeof(ent));
    h = pgs_hash_fnv1a64(h, parts, sizeof(parts));
    h = pgs_hash_fnv1a64(h, bs->shape.cols, (size_t)bs->shape.ncols * sizeof(bs->shape.cols[0]));
    bs->shape.hash = h;
    return 0;
}

int pgs_sqlbatch_shape_equal(const pgs_bshape_t *a, const pgs_bshape_t *b)
{
    return a->mask == b->mask && a->shape.ent == b->shape.ent && a->shape.op == b->shape.op &&
           a->shape.has_expected_version == b->shape.has_expected_version &&
           a->shape.ncols == b->shape.ncols &&
           memcmp(a->shape.cols, b->shape.cols, (size_t)a->shape.ncols * sizeof(int)) == 0;
}

/* ---- statement text ---------------------------------------------------- */

static void put_table(pgs_sbuf_t *sb, const char *schema, const pgs_entity_t *ent)
{
    pgs_sbuf_quoted(sb, schema, '"');
    pgs_sbuf_puts(sb, ".");
    pgs_sbuf_quoted(sb, ent->name, '"');
}

static const char *clinic_type(const pgs_entity_t *ent)
{
    return ent->clinic_col >= 0 ? ent->cols[ent->clinic_col].type_sql : "text";
}

/* t."pk" = f.kN AND ... AND t."clinic_id" = $1::type [AND t."version" = f.ev] */
static void put_row_match(pgs_sbuf_t *sb, const pgs_bshape_t *bs)
{
    const pgs_entity_t *ent = bs->shape.ent;
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_puts(sb, "t.");
        pgs_sbuf_quoted(sb, ent->cols[ent->pk[i]].name, '"');
        pgs_sbuf_printf(sb, " = f.k%d AND ", i);
    }
    pgs_sbuf_puts(sb, "t.");
    pgs_sbuf_quoted(sb, ent->clinic_col >= 0 ? ent->cols[ent->clinic_col].name : "clinic_id", '"');
    pgs_sbuf_printf(sb, " = $1::%s", clinic_type(ent));
    if (bs->shape.has_expected_version && ent->version_col >= 0) {
        pgs_sbuf_puts(sb, " AND (f.ev IS NULL OR t.");
        pgs_sbuf_quoted(sb, ent->cols[ent->version_col].name, '"');
        pgs_sbuf_puts(sb, " = f.ev)");
    }
}

static void put_managed_sets(pgs_sbuf_t *sb, const pgs_entity_t *ent, int first)
{
    if (ent->version_col >= 0) {
        pgs_sbuf_puts(sb, first ? "" : ", ");
        pgs_sbuf_quoted(sb, ent->cols[ent->version_col].name, '"');
        pgs_sbuf_puts(sb, " = t.");
        pgs_sbuf_quoted(sb, ent->cols[ent->version_col].name, '"');
        pgs_sbuf_puts(sb, " + 1");
        first = 0;
    }
    if (ent->updated_at_col >= 0) {
        pgs_sbuf_puts(sb, first ? "" : ", ");
        pgs_sbuf_quoted(sb, ent->cols[ent->updated_at_col].name, '"');
        pgs_sbuf_puts(sb, " = now()");
    }
}

/* f.k0 = EXCLUDED."pk0" AND ...: the input row of the row in conflict */
static void put_key_of_excluded(pgs_sbuf_t *sb, const pgs_entity_t *ent)
{
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_printf(sb, "%sf.k%d = EXCLUDED.", i ? " AND " : "", i);
        pgs_sbuf_quoted(sb, ent->cols[ent->pk[i]].name, '"');
    }
}

static void put_insert(pgs_sbuf_t *sb, const char *schema, const pgs_bshape_t *bs)
{
    const pgs_entity_t *ent = bs->shape.ent;
    pgs_sbuf_puts(sb, "INSERT INTO ");
    put_table(sb, schema, ent);
    pgs_sbuf_puts(sb, " AS t (");
    pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
    for (int i = 0; i < ent->npk; i++) {
        pgs_sbuf_puts(sb, ", ");
        pgs_sbuf_quoted(sb, ent->cols[ent->pk[i]].name, '"');
    }
    for (int i = 0; i < bs->shape.ncols; i++) {
        pgs_sbuf_puts(sb, ", ");
        pgs_sbuf_quoted(sb, ent->cols[bs->shape.cols[i]].name, '"');
    }
    pgs_sbuf_printf(sb, ") SELECT $1::%s", clinic_type(ent));
    for (int i = 0; i < ent->npk; i++)
        pgs_sbuf_printf(sb, ", f.k%d", i);
    for (int i = 0; i < bs->shape.ncols; i++)
        pgs_sbuf_printf(sb, ", f.d%d", i);
    pgs_sbuf_puts(sb, " FROM fresh f");
    if (bs->shape.op == PGS_OP_UPSERT) {
        pgs_sbuf_puts(sb, " ON CONFLICT (");
        for (int i = 0; i < ent->npk; i++) {
            pgs_sbuf_puts(sb, i ? ", " : "");
            pgs_sbuf_quoted(sb, ent->cols[ent->pk[i]].name, '"');
        }
        if (ent->cols[ent->clinic_col].is_pk) {
            pgs_sbuf_puts(sb, ", ");
            pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
        }
        pgs_sbuf_puts(sb, ") DO UPDATE SET ");
        if (bs->mask && bs->shape.ncols > 0) {
            /* only the columns the row's command gave: EXCLUDED cannot
             * carry the mask, so the conflicting row's own input row (one
             * per key: lanes never put two commands of a row in one
             * transaction) is looked up in fresh */
            pgs_sbuf_puts(sb, "(");
            for (int i = 0; i < bs->shape.ncols; i++) {
                pgs_sbuf_puts(sb, i ? ", " : "");
                pgs_sbuf_quoted(sb, ent->cols[bs->shape.cols[i]].name, '"');
            }
            pgs_sbuf_puts(sb, ") = (SELECT ");
            for (int i = 0; i < bs->shape.ncols; i++) {
                const char *name = ent->cols[bs->shape.cols[i]].name;
                pgs_sbuf_printf(sb, "%sCASE WHEN f.m%d THEN EXCLUDED.", i ? ", " : "", i);
                pgs_sbuf_quoted(sb, name, '"');
                pgs_sbuf_puts(sb, " ELSE t.");
                pgs_sbuf_quoted(sb, name, '"');
                pgs_sbuf_puts(sb, " END");
            }
            pgs_sbuf_puts(sb, " FROM fresh f WHERE ");
            put_key_of_excluded(sb, ent);
            pgs_sbuf_puts(sb, ")");
        } else {
            for (int i = 0; i < bs->shape.ncols; i++) {
                const char *name = ent->cols[bs->shape.cols[i]].name;
                pgs_sbuf_puts(sb, i ? ", " : "");
                pgs_sbuf_quoted(sb, name, '"');
                pgs_sbuf_puts(sb, " = EXCLUDED.");
                pgs_sbuf_quoted(sb, name, '"');
            }
        }
        if (bs->shape.ncols == 0 && ent->version_col < 0 && ent->updated_at_col < 0) {
            pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
            pgs_sbuf_puts(sb, " = EXCLUDED.");
            pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
        } else {
            put_managed_sets(sb, ent, bs->shape.ncols == 0);
        }
        pgs_sbuf_puts(sb, " WHERE t.");
        pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
        pgs_sbuf_puts(sb, " = EXCLUDED.");
        pgs_sbuf_quoted(sb, ent->cols[ent->clinic_col].name, '"');
        if (bs->shape.has_expected_version) {
            /* EXCLUDED cannot carry the expected version either: a row
             * whose version differs is not updated, and expect_all fails
             * the statement (PS001), as the single-command one does */
            pgs_sbuf_puts(sb, " AND (SELECT f.ev IS NULL OR t.");
            pgs_sbuf_quoted(sb, ent->cols[ent->version_col].name, '"');
            pgs_sbuf_puts(sb, " = f.ev FROM fresh f WHERE ");
            put_key_of_excluded(sb, ent);
            pgs_sbuf_puts(sb, ")");
        }
    }
}

static void put_update(pgs_sbuf_t *sb, const char *schema, const pgs_bshape_t *bs)
{
    const pgs_entity_t *ent = bs->shape.ent;
    pgs_sbuf_puts(sb, "UPDATE ");
    put_table(sb, schema, ent);
    pgs_sbuf_puts(sb, " AS t SET ");
    for (int i = 0; i < bs->shape.ncols; i++) {
        const char *name = ent->cols[bs->shape.cols[i]].name;
        pgs_sbuf_puts(sb, i ? ", " : "");
        pgs_sbuf_quoted(sb, name, '"');
        pgs_sbuf_printf(sb, " = CASE WHEN f.m%d THEN f.d%d ELSE t.", i, i);
        pgs_sbuf_quoted(sb, name, '"');
        pgs_sbuf_puts(sb, " END");
    }
    put_managed_sets(sb, ent, bs->shape.ncols == 0);
    pgs_sbuf_puts(sb, " FROM fresh f WHERE ");
    put_row_match(sb, bs);
}

static void put_delete(pgs_sbuf_t *sb, const char *schema, const pgs_bshape_t *bs)
{
    pgs_sbuf_puts(sb, "DELETE FROM ");
    put_table(sb, schema, bs->shape.ent);
    pgs_sbuf_puts(sb, " AS t USING fresh f WHERE ");
    put_row_match(sb, bs);
}

char *pgs_sqlbatch_statement(const char *schema, const pgs_bshape_t *bs)
{
    const pgs_entity_t *ent = bs->shape.ent;
    pgs_sbuf_t in = {0}, w = {0};
    int p = 6;
    pgs_sbuf_puts(&in, "SELECT * FROM unnest($3::uuid[], $4::int[], $5::bigint[]");
    for (int i = 0; i < ent->npk; i++)
        pgs_sbuf_printf(&in, ", $%d::%s[]", p++, ent->cols[ent->pk[i]].type_sql);
    for (int i = 0; i < bs->shape.ncols; i++)
        pgs_sbuf_printf(&in, ", $%d::%s[]", p++, ent->cols[bs->shape.cols[i]].type_sql);
    if (bs->mask) {
        for (int i = 0; i < bs->shape.ncols; i++)
            pgs_sbuf_printf(&in, ", $%d::boolean[]", p++);
    }
    if (bs->shape.has_expected_version)
        pgs_sbuf_printf(&in, ", $%d::bigint[]", p++);
    pgs_sbuf_printf(&in, ", $%d::bytea[]", p++);
    int clinics = p++;
    pgs_sbuf_puts(&in, ") WITH ORDINALITY AS u(command_id, kpart, koff");
    for (int i = 0; i < ent->npk; i++)
        pgs_sbuf_printf(&in, ", k%d", i);
    for (int i = 0; i < bs->shape.ncols; i++)
        pgs_sbuf_printf(&in, ", d%d", i);
    if (bs->mask) {
        for (int i = 0; i < bs->shape.ncols; i++)
            pgs_sbuf_printf(&in, ", m%d", i);
    }
    if (bs->shape.has_expected_version)
        pgs_sbuf_puts(&in, ", ev");
    pgs_sbuf_puts(&in, ", digest, ord)");
    /* The tenant wall's SQL check: the array of each row's own clinic and
     * $1, the clinic the statement writes under, must all be the
     * transaction's (pgscribe.expect_clinics raises PS003 otherwise), so a
     * row of another clinic fails the statement instead of being written as
     * $1's. Its arguments are parameters only: one call per statement (a
     * one-time filter), not one per row. */
    pgs_sbuf_printf(&in, " WHERE pgscribe.expect_clinics($%d::text[], $1::text)", clinics);
    switch (bs->shape.op) {
    case PGS_OP_INSERT:
    case PGS_OP_UPSERT:
        put_insert(&w, schema, bs);
        break;
    case PGS_OP_UPDATE:
        put_update(&w, schema, bs);
        break;
    case PGS_OP_DELETE:
        put_delete(&w, schema, bs);
        break;
    }
    char *sql = pgs_sqlenvelope_statement(in.buf, 0, w.buf);
    free(in.buf);
    free(w.buf);
    return sql;
}

/* ---- parameters --------------------------------------------------------- */

/* Every array element of every batch passes here (ids, digests, keys,
 * values, the write audit's texts): memchr finds the next double quote and
 * the next backslash (each searched again only once passed), the runs
 * between them are copied whole, and the output goes through a local
 * pointer, which a char store cannot alias as it can sb->len. */
void pgs_sqlbatch_put_element(pgs_sbuf_t *sb, const char *s, size_t len)
{
    pgs_sbuf_reserve(sb, 2 * len + 3);
    char *o = sb->buf + sb->len;
    const char *end = s + len;
    const char *quote = len ? memchr(s, '"', len) : NULL;
    const char *bslash = len ? memchr(s, '\\', len) : NULL;
    *o++ = '"';
    for (;;) {
        const char *next = quote && (!bslash || quote < bslash) ? quote : bslash;
        const char *stop = next ? next : end;
        memcpy(o, s, (size_t)(stop - s));
        o += stop - s;
        if (!next)
            break;
        *o++ = '\\';
        *o++ = *next;
        s = next + 1;
        if (next == quote)
            quote = s < end ? memchr(s, '"', (size_t)(end - s)) : NULL;
        else
            bslash = s < end ? memchr(s, '\\', (size_t)(end - s)) : NULL;
    }
    *o++ = '"';
    *o = '\0';
    sb->len = (size_t)(o - sb->buf);
}

static void put_value(pgs_sbuf_t *sb, const pgs_value_t *v)
{
    static const char hex[] = "0123456789abcdef";
    char buf[PGS_VALUE_TEXT_MAX];
    size_t len;
    if (!v || v->type == PGS_VAL_NULL) {
        pgs_sbuf_puts(sb, "NULL");
        return;
    }
    if (v->type == PGS_VAL_BYTES) {
        /* bytea's hex input form, "\\x..." inside the array literal */
        pgs_sbuf_reserve(sb, 2 * v->u.s.len + 6);
        pgs_sbuf_puts(sb, "\"\\\\x");
        for (size_t i = 0; i < v->u.s.len; i++) {
            unsigned char b = (unsigned char)v->u.s.ptr[i];
            sb->buf[sb->len++] = hex[b >> 4];
            sb->buf[sb->len++] = hex[b & 15];
        }
        sb->buf[sb->len] = '\0';
        pgs_sbuf_puts(sb, "\"");
        return;
    }
    const char *text = pgs_value_text(v, buf, &len);
    pgs_sqlbatch_put_element(sb, text, len);
}

char *pgs_sqlbatch_array_close(pgs_sbuf_t *sb)
{
    /* no element means no separator was written, so no "{" either */
    pgs_sbuf_puts(sb, sb->len ? "}" : "{}");
    char *s = sb->buf;
    memset(sb, 0, sizeof(*sb));
    return s;
}

/* Decimal text of @p v appended without the printf machinery: the arrays of
 * partitions, offsets, issue times and versions hold one per row. */
static void put_i64(pgs_sbuf_t *sb, int64_t v)
{
    char buf[PGS_NUMTEXT_MAX];
    pgs_sbuf_putn(sb, buf, pgs_numtext_i64(v, buf));
}

static void put_i32s(pgs_sbuf_t *sb, const int32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(sb, i);
        put_i64(sb, v[i]);
    }
}

static void put_i64s(pgs_sbuf_t *sb, const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(sb, i);
        put_i64(sb, v[i]);
    }
}

char *pgs_sqlbatch_array_int32(const int32_t *v, size_t n)
{
    pgs_sbuf_t sb = {0};
    put_i32s(&sb, v, n);
    return pgs_sqlbatch_array_close(&sb);
}

char *pgs_sqlbatch_array_int64(const int64_t *v, size_t n)
{
    pgs_sbuf_t sb = {0};
    put_i64s(&sb, v, n);
    return pgs_sqlbatch_array_close(&sb);
}

void pgs_sqlbatch_array_sep(pgs_sbuf_t *sb, size_t i)
{
    pgs_sbuf_puts(sb, i ? "," : "{");
}

/* The statement's parameters are written one after another into one
 * buffer, each ended by its NUL: one allocation per statement, not one (and
 * its regrowths) per array. Offsets are kept while the buffer may move. */
typedef struct {
    pgs_sbuf_t sb;
    size_t start[8 + PGS_MAX_KEY_COLS + 2 * PGS_MAX_DATA_COLS];
    int n;
} params_block_t;

static void param_open(params_block_t *pb)
{
    pb->start[pb->n++] = pb->sb.len;
}

/* Ends the parameter opened last: an array literal gets its "}" (or "{}"
 * when no element opened it), and every parameter its NUL. */
static void param_close(params_block_t *pb, int array)
{
    if (array)
        pgs_sbuf_puts(&pb->sb, pb->sb.len > pb->start[pb->n - 1] ? "}" : "{}");
    pgs_sbuf_reserve(&pb->sb, 1);
    pb->sb.buf[pb->sb.len++] = '\0';
    pb->sb.buf[pb->sb.len] = '\0';
}

static void param_text(params_block_t *pb, const char *s)
{
    param_open(pb);
    pgs_sbuf_puts(&pb->sb, s);
    param_close(pb, 0);
}

void pgs_sqlbatch_params(const pgs_bshape_t *bs, const pgs_command_t *const *cmds,
                         const int32_t *partitions, const int64_t *offsets, size_t n,
                         const char *topic, pgs_batch_params_t *out)
{
    const pgs_entity_t *ent = bs->shape.ent;
    int ncols = bs->shape.ncols;
    int total =
        7 + ent->npk + ncols * (bs->mask ? 2 : 1) + (bs->shape.has_expected_version ? 1 : 0);
    params_block_t pb;
    pb.n = 0;
    memset(&pb.sb, 0, sizeof(pb.sb));
    /* about what a row of a few columns takes, so the buffer seldom grows */
    pgs_sbuf_reserve(&pb.sb, 256 + n * (160 + 48 * (size_t)ncols));
    pgs_sbuf_t *sb = &pb.sb;
    param_text(&pb, n ? cmds[0]->clinic_id : "");
    param_text(&pb, topic);
    /* $3 command ids, $4 partitions, $5 offsets */
    param_open(&pb);
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(sb, i);
        pgs_sqlbatch_put_element(sb, cmds[i]->command_id, strlen(cmds[i]->command_id));
    }
    param_close(&pb, 1);
    param_open(&pb);
    put_i32s(sb, partitions, n);
    param_close(&pb, 1);
    param_open(&pb);
    put_i64s(sb, offsets, n);
    param_close(&pb, 1);
    for (int k = 0; k < ent->npk; k++) {
        const char *name = ent->cols[ent->pk[k]].name;
        param_open(&pb);
        for (size_t i = 0; i < n; i++) {
            pgs_sqlbatch_array_sep(sb, i);
            put_value(sb, pgs_command_field(cmds[i]->key, cmds[i]->key_cnt, name));
        }
        param_close(&pb, 1);
    }
    /* Each row's value of each column, found in one pass over its fields
     * (a name lookup per field, not a scan of the fields per column). */
    const pgs_value_t **vals = NULL;
    if (ncols > 0 && n > 0) {
        int pos_of[PGS_MAX_DATA_COLS * 4];
        int maxcol = ent->ncols < (int)(sizeof(pos_of) / sizeof(pos_of[0]))
                         ? ent->ncols
                         : (int)(sizeof(pos_of) / sizeof(pos_of[0]));
        for (int k = 0; k < maxcol; k++)
            pos_of[k] = -1;
        for (int c = 0; c < ncols; c++) {
            if (bs->shape.cols[c] < maxcol)
                pos_of[bs->shape.cols[c]] = c;
        }
        vals = pgs_xalloc_calloc(n * (size_t)ncols, sizeof(*vals));
        for (size_t i = 0; i < n; i++) {
            const pgs_command_t *cmd = cmds[i];
            for (size_t f = 0; f < cmd->data_cnt; f++) {
                int col = pgs_catalog_field_column(ent, cmd, &cmd->data[f]);
                int pos = col >= 0 && col < maxcol ? pos_of[col] : -1;
                /* the first of a repeated name, as pgs_command_field finds */
                if (pos >= 0 && !vals[i * (size_t)ncols + (size_t)pos])
                    vals[i * (size_t)ncols + (size_t)pos] = &cmd->data[f].value;
            }
        }
    }
    for (int c = 0; c < ncols; c++) {
        param_open(&pb);
        for (size_t i = 0; i < n; i++) {
            pgs_sqlbatch_array_sep(sb, i);
            put_value(sb, vals[i * (size_t)ncols + (size_t)c]);
        }
        param_close(&pb, 1);
    }
    if (bs->mask) {
        for (int c = 0; c < ncols; c++) {
            param_open(&pb);
            for (size_t i = 0; i < n; i++) {
                pgs_sqlbatch_array_sep(sb, i);
                pgs_sbuf_puts(sb, vals[i * (size_t)ncols + (size_t)c] ? "t" : "f");
            }
            param_close(&pb, 1);
        }
    }
    free(vals);
    if (bs->shape.has_expected_version) {
        param_open(&pb);
        for (size_t i = 0; i < n; i++) {
            pgs_sqlbatch_array_sep(sb, i);
            if (cmds[i]->has_expected_version)
                put_i64(sb, cmds[i]->expected_version);
            else
                pgs_sbuf_puts(sb, "NULL");
        }
        param_close(&pb, 1);
    }
    /* the content digests, last: a repeated command id must repeat its content */
    param_open(&pb);
    for (size_t i = 0; i < n; i++) {
        char digest[PGS_SQLGEN_DIGEST_HEX_SIZE];
        pgs_sqlgen_digest_hex(ent, cmds[i], digest);
        pgs_sqlbatch_array_sep(sb, i);
        pgs_sqlbatch_put_element(sb, digest, strlen(digest));
    }
    param_close(&pb, 1);
    /* each row's own clinic, for the statement's pgscribe.expect_clinics */
    param_open(&pb);
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(sb, i);
        pgs_sqlbatch_put_element(sb, cmds[i]->clinic_id, strlen(cmds[i]->clinic_id));
    }
    param_close(&pb, 1);
    if (pb.n != total)
        abort(); /* the parameter count the statement text was built for */
    out->n = total;
    out->block = pb.sb.buf;
    out->values = pgs_xalloc_malloc((size_t)total * sizeof(char *));
    for (int p = 0; p < total; p++)
        out->values[p] = pb.sb.buf + pb.start[p];
}

void pgs_sqlbatch_params_free(pgs_batch_params_t *p)
{
    if (p->block)
        free(p->block); /* the values point into it */
    else {
        for (int i = 0; i < p->n; i++)
            free(p->values[i]);
    }
    free(p->values);
    p->values = NULL;
    p->block = NULL;
    p->n = 0;
}
