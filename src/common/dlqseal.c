/* Sealed dead-letter values (see dlqseal.h). */
#include "common/dlqseal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

int pgs_dlq_context(PgsFieldContext *ctx, const char *clinic, const char *topic, int32_t partition,
                    int64_t offset, char row_key[PGS_DLQ_ROW_KEY_BYTES])
{
    int n = snprintf(row_key, PGS_DLQ_ROW_KEY_BYTES, "%s\x1f%" PRId32 "\x1f%" PRId64,
                     topic ? topic : "", partition, offset);
    if (n < 0 || n >= PGS_DLQ_ROW_KEY_BYTES)
        return -1;
    ctx->clinic = clinic ? clinic : "";
    ctx->entity = PGS_DLQ_ENTITY;
    ctx->column = PGS_DLQ_COLUMN;
    ctx->row_key = row_key;
    return 0;
}

const PgsKey *pgs_dlq_seal_key(const PgsKeyring *ring, const char *clinic)
{
    if (!ring)
        return NULL;
    return pgs_keyring_current(ring, PGS_KEY_FIELD, clinic && *clinic ? clinic : NULL);
}

uint32_t pgs_dlq_seal(const PgsKeyring *ring, const char *clinic, const char *topic,
                      int32_t partition, int64_t offset, const void *plain, size_t len,
                      unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    const PgsKey *key = pgs_dlq_seal_key(ring, clinic);
    if (!key)
        return 0;
    char row_key[PGS_DLQ_ROW_KEY_BYTES];
    PgsFieldContext ctx;
    if (pgs_dlq_context(&ctx, clinic, topic, partition, offset, row_key) != 0)
        return 0;
    unsigned char *buf = pgs_xalloc_malloc(len + PGS_ENVELOPE_OVERHEAD);
    size_t n = pgs_field_encrypt(key, &ctx, plain ? plain : "", len, buf);
    if (n == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    *out_len = n;
    return key->id;
}

int pgs_dlq_open(const PgsKeyring *ring, const char *clinic, const char *topic, int32_t partition,
                 int64_t offset, const unsigned char *env, size_t len, unsigned char **out,
                 size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    if (!ring) {
        snprintf(err, errlen, "no keyring (crypto.keyring is empty)");
        return -1;
    }
    char row_key[PGS_DLQ_ROW_KEY_BYTES];
    PgsFieldContext ctx;
    if (pgs_dlq_context(&ctx, clinic, topic, partition, offset, row_key) != 0) {
        snprintf(err, errlen, "source topic name too long");
        return -1;
    }
    unsigned char *buf = pgs_xalloc_malloc(len ? len : 1);
    size_t plen = 0;
    if (pgs_field_decrypt(ring, &ctx, env, len, buf, &plen, err, errlen) < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = plen;
    return 0;
}
