/* Decimal text of integers without the printf machinery: the per-command
 * path writes several (key forms, array elements, partitions, offsets). */
#ifndef PGSCRIBE_NUMTEXT_H
#define PGSCRIBE_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/** Room for any int64 or uint64 in decimal, its sign and the NUL. */
#define PGS_NUMTEXT_MAX 24

/**
 * @brief Writes @p v in decimal ("-" first when negative), as printf's
 *        "%" PRId64 does, NUL-terminated, into @p out.
 * @returns the length, without the NUL.
 */
size_t pgs_numtext_i64(int64_t v, char out[PGS_NUMTEXT_MAX]);
/** @brief As pgs_numtext_i64, of an unsigned value ("%" PRIu64). */
size_t pgs_numtext_u64(uint64_t v, char out[PGS_NUMTEXT_MAX]);

#endif
