/* Masking one value for a masked copy (`pgscribe anonymize`), per the
 * column's pgscribe.column_policy.mask: pseudonym, year, null or keep.
 * Values are in PostgreSQL's text form, as COPY writes them. */
#ifndef PGSCRIBE_MASK_H
#define PGSCRIBE_MASK_H

#include <stddef.h>

#include "common/keyring.h"

typedef enum {
    PGS_MASK_KEEP = 0,
    PGS_MASK_PSEUDONYM,
    PGS_MASK_YEAR,
    PGS_MASK_NULL,
} pgs_mask_t;

/** How a pseudonym is written: a uuid column needs a uuid. */
typedef enum { PGS_MASK_AS_TEXT = 0, PGS_MASK_AS_UUID } pgs_mask_form_t;

/* the longest masked value that is not a kept one: a uuid (36) or 64 hex */
#define PGS_MASK_MAX_OUT 65

/** @brief "pseudonym", "year", "null" or "keep" to a mask; -1 otherwise. */
int pgs_mask_parse(const char *name, pgs_mask_t *out);
/** @brief The policy name of @p m. */
const char *pgs_mask_name(pgs_mask_t m);

/**
 * @brief Masks @p len bytes of @p value (text form) by @p m.
 *
 * pseudonym: HMAC-SHA-256 under @p key of (@p entity, @p column, value),
 * written as a uuid (its first 16 bytes, version nibble 8) or as 32 hex
 * digits; the domain (@p entity, @p column) must be the referenced column's
 * for a foreign key, so a reference keeps matching. year: "YYYY-01-01" for a
 * date, and "YYYY-01-01 00:00:00" plus the rest's zone for a timestamp; a
 * value that does not start with a 4-digit year is dropped.
 *
 * @returns 1 with the masked value in @p out (NUL-terminated, @p *out_len),
 *          0 when the value becomes NULL, 2 for keep (use @p value as is),
 *          or -1 on a crypto failure or no pseudonym key.
 */
int pgs_mask_value(pgs_mask_t m, pgs_mask_form_t form, const PgsKey *key, const char *entity,
                   const char *column, const char *value, size_t len, char out[PGS_MASK_MAX_OUT],
                   size_t *out_len);

#endif
