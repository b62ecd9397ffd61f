/* AES-256-GCM field envelopes and HMAC-SHA-256 pseudonyms (OpenSSL EVP). */
#include "common/fieldcrypt.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define NONCE_BYTES 12

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint32_t pgs_envelope_key_id(const unsigned char *env, size_t len)
{
    if (!env || len < PGS_ENVELOPE_OVERHEAD || env[0] != PGS_ENVELOPE_V1)
        return 0;
    return get_u32(env + 1);
}

/* Feeds one length-prefixed part of the associated data. */
static int aad_part(EVP_CIPHER_CTX *c, const char *s)
{
    unsigned char len[4];
    size_t n = s ? strlen(s) : 0;
    int outl = 0;
    put_u32(len, (uint32_t)n);
    if (EVP_CipherUpdate(c, NULL, &outl, len, 4) != 1)
        return -1;
    return n == 0 || EVP_CipherUpdate(c, NULL, &outl, (const unsigned char *)s, (int)n) == 1 ? 0
                                                                                             : -1;
}

static int aad(EVP_CIPHER_CTX *c, const unsigned char *header, const PgsFieldContext *ctx)
{
    static const char domain[] = "pgscribe-field-v1";
    int outl = 0;
    if (EVP_CipherUpdate(c, NULL, &outl, (const unsigned char *)domain, sizeof domain - 1) != 1 ||
        EVP_CipherUpdate(c, NULL, &outl, header, 5) != 1)
        return -1;
    if (aad_part(c, ctx->clinic) || aad_part(c, ctx->entity) || aad_part(c, ctx->column) ||
        aad_part(c, ctx->row_key))
        return -1;
    return 0;
}

size_t pgs_field_encrypt(const PgsKey *key, const PgsFieldContext *ctx, const void *plain,
                         size_t len, unsigned char *out)
{
    if (!key || key->purpose != PGS_KEY_FIELD || len > (size_t)INT32_MAX - PGS_ENVELOPE_OVERHEAD)
        return 0;
    out[0] = PGS_ENVELOPE_V1;
    put_u32(out + 1, key->id);
    if (RAND_bytes(out + 5, NONCE_BYTES) != 1)
        return 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return 0;
    size_t total = 0;
    int outl = 0, fin = 0;
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
        EVP_EncryptInit_ex(c, NULL, NULL, key->bytes, out + 5) == 1 && aad(c, out, ctx) == 0 &&
        (len == 0 ||
         EVP_EncryptUpdate(c, out + PGS_ENVELOPE_HEADER, &outl, plain, (int)len) == 1) &&
        EVP_EncryptFinal_ex(c, out + PGS_ENVELOPE_HEADER + outl, &fin) == 1 &&
        (size_t)(outl + fin) == len &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, PGS_ENVELOPE_TAG,
                            out + PGS_ENVELOPE_HEADER + len) == 1)
        total = len + PGS_ENVELOPE_OVERHEAD;
    EVP_CIPHER_CTX_free(c);
    return total;
}

int pgs_field_decrypt(const PgsKeyring *ring, const PgsFieldContext *ctx, const unsigned char *env,
                      size_t len, unsigned char *out, size_t *plain_len, char *err, size_t errlen)
{
    if (!env || len < PGS_ENVELOPE_OVERHEAD || len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "not an encrypted value (%zu bytes, need at least %d)", len,
                 PGS_ENVELOPE_OVERHEAD);
        return -1;
    }
    if (env[0] != PGS_ENVELOPE_V1) {
        snprintf(err, errlen, "unknown envelope version %u", env[0]);
        return -1;
    }
    uint32_t id = get_u32(env + 1);
    const PgsKey *key = pgs_keyring_find(ring, id);
    if (!key || key->purpose != PGS_KEY_FIELD) {
        snprintf(err, errlen, "key id %u is not a field key in the keyring", id);
        return -1;
    }
    if (key->clinic && (!ctx->clinic || strcmp(key->clinic, ctx->clinic) != 0)) {
        snprintf(err, errlen, "key id %u belongs to another clinic", id);
        return -1;
    }
    size_t n = len - PGS_ENVELOPE_OVERHEAD;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int outl = 0, fin = 0, ok = 0;
    unsigned char tag[PGS_ENVELOPE_TAG];
    memcpy(tag, env + PGS_ENVELOPE_HEADER + n, PGS_ENVELOPE_TAG);
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
        EVP_DecryptInit_ex(c, NULL, NULL, key->bytes, env + 5) == 1 && aad(c, env, ctx) == 0 &&
        (n == 0 || EVP_DecryptUpdate(c, out, &outl, env + PGS_ENVELOPE_HEADER, (int)n) == 1) &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, PGS_ENVELOPE_TAG, tag) == 1 &&
        EVP_DecryptFinal_ex(c, out + outl, &fin) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(out, n);
        snprintf(err, errlen,
                 "authentication failed for key id %u (wrong key, tampered, or moved to another "
                 "row, column or clinic)",
                 id);
        return -1;
    }
    *plain_len = (size_t)(outl + fin);
    return (int)*plain_len;
}

int pgs_pseudonym(const PgsKey *key, const char *entity, const char *column, const void *value,
                  size_t len, unsigned char out[PGS_PSEUDONYM_BYTES])
{
    if (!key || key->purpose != PGS_KEY_PSEUDONYM)
        return -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
    int rc = -1;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    unsigned char lens[8];
    put_u32(lens, (uint32_t)strlen(entity));
    put_u32(lens + 4, (uint32_t)strlen(column));
    size_t outl = 0;
    if (m && EVP_MAC_init(m, key->bytes, PGS_KEY_BYTES, params) == 1 &&
        EVP_MAC_update(m, lens, 8) == 1 &&
        EVP_MAC_update(m, (const unsigned char *)entity, strlen(entity)) == 1 &&
        EVP_MAC_update(m, (const unsigned char *)column, strlen(column)) == 1 &&
        EVP_MAC_update(m, value, len) == 1 &&
        EVP_MAC_final(m, out, &outl, PGS_PSEUDONYM_BYTES) == 1 && outl == PGS_PSEUDONYM_BYTES)
        rc = 0;
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    return rc;
}
