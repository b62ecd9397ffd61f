/* Sealed dead-letter values: when a keyring with a field key is loaded, the
 * original message bytes of a dead letter are stored as a field envelope
 * (fieldcrypt.h) under the clinic's current field key (the "*" key when the
 * clinic is not known), bound to
 *
 *     clinic   the clinic id, "" when unknown
 *     entity   "pgscribe.dead_letter"
 *     column   "value"
 *     row_key  source topic, partition and offset joined by byte 0x1F
 *
 * so an envelope copied under another dead letter's headers, or claiming
 * another source position or clinic, fails to decrypt. The headers say
 * pgscribe.value_encryption=v1 and pgscribe.value_key_id=<id>. */
#ifndef PGSCRIBE_DLQSEAL_H
#define PGSCRIBE_DLQSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/fieldcrypt.h"
#include "common/keyring.h"

#define PGS_DLQ_ENTITY        "pgscribe.dead_letter"
#define PGS_DLQ_COLUMN        "value"
#define PGS_DLQ_HDR_ENC       "pgscribe.value_encryption"
#define PGS_DLQ_HDR_KEY_ID    "pgscribe.value_key_id"
#define PGS_DLQ_ENC_V1        "v1"
#define PGS_DLQ_ROW_KEY_BYTES 320

/** @brief Fills @p ctx for a dead letter of @p topic/@p partition/@p offset
 *         of @p clinic (NULL: unknown); the row key is written to @p row_key
 *         (PGS_DLQ_ROW_KEY_BYTES). Returns 0, or -1 when the topic is too
 *         long for the buffer. */
int pgs_dlq_context(PgsFieldContext *ctx, const char *clinic, const char *topic, int32_t partition,
                    int64_t offset, char row_key[PGS_DLQ_ROW_KEY_BYTES]);

/** @brief The field key a dead letter of @p clinic (NULL: unknown) is sealed
 *         with, or NULL when @p ring has none (then it stays in clear). */
const PgsKey *pgs_dlq_seal_key(const PgsKeyring *ring, const char *clinic);

/** @brief Seals @p len bytes into a new buffer (*out, *out_len; free()).
 *         Returns the key id, or 0 when there is no key or encryption failed. */
uint32_t pgs_dlq_seal(const PgsKeyring *ring, const char *clinic, const char *topic,
                      int32_t partition, int64_t offset, const void *plain, size_t len,
                      unsigned char **out, size_t *out_len);

/** @brief Opens a sealed value into a new buffer (*out, *out_len; free()).
 *         Returns 0, or -1 with @p err set to a reason without any value
 *         (no keyring, key id N not in the keyring, "authentication
 *         failed", ...). */
int pgs_dlq_open(const PgsKeyring *ring, const char *clinic, const char *topic, int32_t partition,
                 int64_t offset, const unsigned char *env, size_t len, unsigned char **out,
                 size_t *out_len, char *err, size_t errlen);

#endif
