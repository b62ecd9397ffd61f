/* Tuple encoding: tagged, length-prefixed parts, so no part can forge another. */
#ifndef PGSCRIBE_TUPLE_H
#define PGSCRIBE_TUPLE_H

#include <stddef.h>

#include "common/sbuf.h"

/** Bytes before a part's content: its tag and its 4-byte big-endian length. */
#define PGS_TUPLE_HEADER_SIZE 5

/** @brief Appends a part's header with a length to be filled in by
 *         pgs_tuple_close. @returns where its content starts. */
size_t pgs_tuple_open(pgs_sbuf_t *sb, char tag);
/** @brief Sets the length of the part whose content starts at @p start to
 *         what was appended since. */
void pgs_tuple_close(pgs_sbuf_t *sb, size_t start);
/** @brief Appends part @p tag holding @p len bytes of @p s. */
void pgs_tuple_put(pgs_sbuf_t *sb, char tag, const char *s, size_t len);

#endif
