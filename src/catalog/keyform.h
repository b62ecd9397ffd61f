/* Key forms: the one text a key value has for PostgreSQL, whatever its spelling. */
#ifndef PGSCRIBE_KEYFORM_H
#define PGSCRIBE_KEYFORM_H

#include "catalog/catalog.h"
#include "codec/command.h"
#include "common/sbuf.h"

/**
 * @brief Appends to @p out the canonical text of key value @p v for column
 *        @p col: the spelling every other spelling PostgreSQL takes as the
 *        same row collapses to. A uuid in upper case, in braces or without
 *        hyphens becomes lower-case 8-4-4-4-12; an integer column's value
 *        ("042", " +42 ", 42) becomes its decimal digits; a boolean column's
 *        't'/'true'/'on'/1… becomes "t" or "f"; any other type is its text
 *        form as bound, byte for byte.
 * @returns 0, or -1 when the value cannot be a value of the column (then
 *          nothing is appended; PostgreSQL would reject it too).
 */
int pgs_keyform_append(pgs_sbuf_t *out, const pgs_column_t *col, const pgs_value_t *v);

#endif
