/* Field encryption: AES-256-GCM in a versioned envelope, and keyed
 * pseudonyms (HMAC-SHA-256).
 *
 * Envelope (stored as bytea):
 *
 *     byte 0        format version, PGS_ENVELOPE_V1 (0x01)
 *     bytes 1..4    key id, big-endian (the keyring's id)
 *     bytes 5..16   nonce, 12 random bytes
 *     bytes 17..    ciphertext, as long as the plaintext
 *     last 16       GCM tag
 *
 * The associated data binds a ciphertext to where it belongs: the version and
 * key id, then the context's clinic, entity ("schema.table", or
 * "pgscribe.dead_letter"), column and row key, each length-prefixed. A
 * ciphertext copied to another row, column, table or clinic fails to decrypt.
 * The key id's bytes let SQL count rows per key:
 * `get_byte(col, 1) << 24 | get_byte(col, 2) << 16 | ...`, or
 * `substring(col from 2 for 4)`. */
#ifndef PGSCRIBE_FIELDCRYPT_H
#define PGSCRIBE_FIELDCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "common/keyring.h"

#define PGS_ENVELOPE_V1       0x01
#define PGS_ENVELOPE_HEADER   17
#define PGS_ENVELOPE_TAG      16
#define PGS_ENVELOPE_OVERHEAD (PGS_ENVELOPE_HEADER + PGS_ENVELOPE_TAG)
#define PGS_PSEUDONYM_BYTES   32

/** Where a ciphertext belongs; each part may be "" but not NULL. */
typedef struct {
    const char *clinic;
    const char *entity;
    const char *column;
    const char *row_key;
} PgsFieldContext;

/** @brief Encrypts @p len bytes at @p plain under @p key (a field key) for
 *         @p ctx into @p out, which must hold len + PGS_ENVELOPE_OVERHEAD
 *         bytes. Returns the envelope's length, or 0 on a crypto failure. */
size_t pgs_field_encrypt(const PgsKey *key, const PgsFieldContext *ctx, const void *plain,
                         size_t len, unsigned char *out);

/** @brief Decrypts the envelope @p env of @p len bytes for @p ctx with the key
 *         it names in @p ring into @p out (room for len bytes). Returns the
 *         plaintext's length and sets @p *plain_len, or -1 with @p err set to a
 *         reason that holds no value: not an envelope, unknown version, key id
 *         N not in the keyring, key N belongs to another clinic, or
 *         "authentication failed" (a wrong key, a tampered ciphertext, or one
 *         moved to another row, column or clinic). */
int pgs_field_decrypt(const PgsKeyring *ring, const PgsFieldContext *ctx, const unsigned char *env,
                      size_t len, unsigned char *out, size_t *plain_len, char *err, size_t errlen);

/** @brief The key id an envelope names, or 0 when @p env is not one. */
uint32_t pgs_envelope_key_id(const unsigned char *env, size_t len);

/** @brief Deterministic pseudonym: HMAC-SHA-256 under @p key (a pseudonym
 *         key) of the entity, column and value, so equal values of one column
 *         give equal pseudonyms (joins hold) and nothing else is learnt.
 *         Returns 0, or -1 on a crypto failure. */
int pgs_pseudonym(const PgsKey *key, const char *entity, const char *column, const void *value,
                  size_t len, unsigned char out[PGS_PSEUDONYM_BYTES]);

#endif
