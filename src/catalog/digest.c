/* Command digests: a length-prefixed canonical encoding of what a command
 * writes, hashed with SHA-256. Stored beside the command id, it tells a
 * true re-delivery (same digest: a duplicate) from an id reused for other
 * content (IDEMPOTENCY_KEY_REUSED), which must not be dropped as a duplicate. */
#include "catalog/digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/keyform.h"
#include "codec/value.h"
#include "common/numtext.h"
#include "common/sbuf.h"
#include "common/tuple.h"

/* Part tags of the encoding; each part is tag, 4-byte big-endian length,
 * bytes. A value PostgreSQL would reject keeps its sent text (tag 'R'). */
static void part(pgs_sbuf_t *sb, char tag, const char *s, size_t len)
{
    pgs_tuple_put(sb, tag, s, len);
}

static void part_str(pgs_sbuf_t *sb, char tag, const char *s)
{
    part(sb, tag, s ? s : "", s ? strlen(s) : 0);
}

static void part_value(pgs_sbuf_t *sb, const pgs_column_t *col, const pgs_value_t *v)
{
    if (v->type == PGS_VAL_NULL) {
        part(sb, 'N', "", 0);
        return;
    }
    /* written in place: no buffer per value on the per-command path */
    size_t start = pgs_tuple_open(sb, 'V');
    if (pgs_keyform_append(sb, col, v) == 0) {
        pgs_tuple_close(sb, start);
        return;
    }
    /* a value no input function of the column takes: its type and sent
     * text, so the encoding stays a function of the command alone */
    sb->len = start - PGS_TUPLE_HEADER_SIZE;
    start = pgs_tuple_open(sb, 'R');
    char buf[PGS_VALUE_TEXT_MAX];
    size_t n = 0;
    const char *text = v->type == PGS_VAL_STRING || v->type == PGS_VAL_BYTES
                           ? (v->u.s.ptr ? v->u.s.ptr : "")
                           : pgs_value_text(v, buf, &n);
    if (v->type == PGS_VAL_STRING || v->type == PGS_VAL_BYTES)
        n = v->u.s.len;
    pgs_sbuf_printf(sb, "%d:", (int)v->type);
    pgs_sbuf_putn(sb, text, n);
    pgs_tuple_close(sb, start);
}

static const pgs_field_t *find(const pgs_field_t *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    }
    return NULL;
}

/* SHA-256 fetched once: EVP_sha256() makes each EVP_Digest fetch the
 * implementation from the provider again, which costs about as much as
 * hashing a command. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* The data fields in catalog column order, from the columns validation
 * found: an insertion sort of at most PGS_MAX_DATA_COLS. 0 when the
 * command was not validated for @p ent (the caller then looks up by name). */
static size_t data_in_column_order(const pgs_entity_t *ent, const pgs_command_t *cmd,
                                   const pgs_field_t **out, int *cols)
{
    if (cmd->cols_of != ent || cmd->data_cnt > PGS_MAX_DATA_COLS)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < cmd->data_cnt; i++) {
        int c = pgs_catalog_field_column(ent, cmd, &cmd->data[i]);
        if (c < 0 || c == ent->clinic_col || strcmp(ent->cols[c].name, "clinic_id") == 0)
            continue; /* a repeat of the command's clinic, already encoded */
        size_t j = n++;
        for (; j > 0 && cols[j - 1] > c; j--) {
            cols[j] = cols[j - 1];
            out[j] = out[j - 1];
        }
        cols[j] = c;
        out[j] = &cmd->data[i];
    }
    return n;
}

/* The encoding's buffer and the digest context, kept by each thread from
 * one command to the next: no allocation and no provider context made and
 * freed per command. */
static _Thread_local pgs_sbuf_t scratch;
static _Thread_local EVP_MD_CTX *scratch_ctx;

static void sha256_of(const pgs_sbuf_t *sb, unsigned char out[PGS_DIGEST_SIZE])
{
    unsigned int len = 0;
    if (!scratch_ctx)
        scratch_ctx = EVP_MD_CTX_new();
    if (!scratch_ctx || !EVP_DigestInit_ex2(scratch_ctx, sha256(), NULL) ||
        !EVP_DigestUpdate(scratch_ctx, sb->buf ? sb->buf : "", sb->len) ||
        !EVP_DigestFinal_ex(scratch_ctx, out, &len) || len != PGS_DIGEST_SIZE)
        abort(); /* only out of memory; as xalloc does: a made-up digest could
                    count another command as a duplicate */
}

void pgs_digest_command(const pgs_entity_t *ent, const pgs_command_t *cmd,
                        unsigned char out[PGS_DIGEST_SIZE])
{
    pgs_sbuf_t sb = scratch;
    sb.len = 0;
    part_str(&sb, 'C', cmd->clinic_id);
    part_str(&sb, 'E', ent->name);
    part_str(&sb, 'O', pgs_command_op_name(cmd->op));
    for (int i = 0; i < ent->npk; i++) {
        const pgs_column_t *col = &ent->cols[ent->pk[i]];
        const pgs_field_t *f = NULL;
        for (size_t k = 0; k < cmd->key_cnt && !f; k++)
            if (pgs_catalog_field_column(ent, cmd, &cmd->key[k]) == ent->pk[i])
                f = &cmd->key[k];
        if (f)
            part_value(&sb, col, &f->value);
        else
            part(&sb, 'A', "", 0);
    }
    /* data in catalog column order: the order of a message's map is not
     * content */
    const pgs_field_t *sorted[PGS_MAX_DATA_COLS];
    int sorted_cols[PGS_MAX_DATA_COLS];
    size_t nsorted = data_in_column_order(ent, cmd, sorted, sorted_cols);
    for (size_t i = 0; i < nsorted; i++) {
        part_str(&sb, 'D', ent->cols[sorted_cols[i]].name);
        part_value(&sb, &ent->cols[sorted_cols[i]], &sorted[i]->value);
    }
    for (int c = 0; c < ent->ncols && cmd->cols_of != ent; c++) {
        const pgs_column_t *col = &ent->cols[c];
        if (c == ent->clinic_col || strcmp(col->name, "clinic_id") == 0)
            continue; /* a repeat of the command's clinic, already encoded */
        const pgs_field_t *f = find(cmd->data, cmd->data_cnt, col->name);
        if (!f)
            continue;
        part_str(&sb, 'D', col->name);
        part_value(&sb, col, &f->value);
    }
    if (cmd->has_expected_version) {
        char num[PGS_NUMTEXT_MAX];
        part(&sb, 'X', num, pgs_numtext_i64(cmd->expected_version, num));
    }
    sha256_of(&sb, out);
    scratch = sb; /* the buffer, perhaps grown, for the next command */
}
