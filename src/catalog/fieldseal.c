/* Field sealing of a command's values at intake (see fieldseal.h). */
#include "catalog/fieldseal.h"

#include <stdio.h>
#include <string.h>

#include "catalog/digest.h"
#include "catalog/keyform.h"
#include "codec/value.h"
#include "common/fieldcrypt.h"

int pgs_fieldseal_row_key(const pgs_entity_t *ent, const pgs_command_t *cmd, pgs_sbuf_t *out)
{
    out->len = 0;
    pgs_sbuf_reserve(out, 64);
    out->buf[0] = '\0';
    for (int i = 0; i < ent->npk; i++) {
        const pgs_column_t *col = &ent->cols[ent->pk[i]];
        const pgs_value_t *v = pgs_command_field(cmd->key, cmd->key_cnt, col->name);
        if (!v || v->type == PGS_VAL_NULL)
            return -1;
        if (i > 0)
            pgs_sbuf_putn(out, "\x1f", 1);
        if (pgs_keyform_append(out, col, v) != 0)
            return -1;
    }
    return 0;
}

const void *pgs_fieldseal_plain(const pgs_value_t *v, char *buf, size_t *len)
{
    switch (v->type) {
    case PGS_VAL_NULL:
        *len = 0;
        return NULL;
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        *len = v->u.s.len;
        return v->u.s.ptr ? v->u.s.ptr : "";
    default:
        return pgs_value_text(v, buf, len);
    }
}

/* The row key buffer, reused: intake runs on the main thread only. */
static pgs_sbuf_t row_key;

pgs_err_t pgs_fieldseal_command(const PgsKeyring *ring, const char *schema, const pgs_entity_t *ent,
                                pgs_command_t *cmd, char *errstr, size_t errstr_size)
{
    const pgs_column_t *first = NULL;
    for (size_t i = 0; i < cmd->data_cnt && !first; i++) {
        int c = pgs_catalog_field_column(ent, cmd, &cmd->data[i]);
        if (c >= 0 && ent->cols[c].sealed && cmd->data[i].value.type != PGS_VAL_NULL)
            first = &ent->cols[c];
    }
    if (!first)
        return PGS_OK;
    const PgsKey *key = ring ? pgs_keyring_current(ring, PGS_KEY_FIELD, cmd->clinic_id) : NULL;
    if (!key) {
        snprintf(errstr, errstr_size,
                 "%s.%s is field-encrypted and the worker has %s for the command's clinic",
                 ent->name, first->name, ring ? "no current field key" : "no keyring");
        return PGS_E_VALIDATE_NO_FIELD_KEY;
    }
    if (pgs_fieldseal_row_key(ent, cmd, &row_key) != 0) {
        snprintf(errstr, errstr_size,
                 "%s: a key value has no canonical form, so %s cannot be sealed to its row",
                 ent->name, first->name);
        return PGS_E_VALIDATE_KEY_FORM;
    }
    /* the digest of what was sent: the envelopes' nonces are random */
    unsigned char *digest = pgs_arena_alloc(cmd->arena, PGS_DIGEST_SIZE);
    pgs_digest_command(ent, cmd, digest);

    size_t sl = strlen(schema), el = strlen(ent->name);
    char *entity = pgs_arena_alloc(cmd->arena, sl + el + 2);
    memcpy(entity, schema, sl);
    entity[sl] = '.';
    memcpy(entity + sl + 1, ent->name, el + 1);
    PgsFieldContext ctx = {
        .clinic = cmd->clinic_id, .entity = entity, .column = "", .row_key = row_key.buf};
    /* two passes: a crypto failure leaves the command untouched */
    pgs_value_t sealed[PGS_MAX_DATA_COLS];
    int which[PGS_MAX_DATA_COLS];
    int n = 0;
    for (size_t i = 0; i < cmd->data_cnt; i++) {
        int c = pgs_catalog_field_column(ent, cmd, &cmd->data[i]);
        if (c < 0 || !ent->cols[c].sealed || cmd->data[i].value.type == PGS_VAL_NULL)
            continue;
        if (n == PGS_MAX_DATA_COLS)
            break; /* cannot happen: the shape holds at most that many */
        char buf[PGS_VALUE_TEXT_MAX];
        size_t len = 0;
        const void *plain = pgs_fieldseal_plain(&cmd->data[i].value, buf, &len);
        unsigned char *env = pgs_arena_alloc(cmd->arena, len + PGS_ENVELOPE_OVERHEAD);
        ctx.column = ent->cols[c].name;
        size_t envlen = pgs_field_encrypt(key, &ctx, plain, len, env);
        if (envlen == 0) {
            snprintf(errstr, errstr_size, "%s.%s: field encryption failed", ent->name,
                     ent->cols[c].name);
            return PGS_E_VALIDATE_NO_FIELD_KEY;
        }
        sealed[n].type = PGS_VAL_BYTES;
        sealed[n].u.s.ptr = (const char *)env;
        sealed[n].u.s.len = envlen;
        which[n++] = (int)i;
    }
    for (int j = 0; j < n; j++)
        cmd->data[which[j]].value = sealed[j];
    cmd->digest = digest;
    return PGS_OK;
}
