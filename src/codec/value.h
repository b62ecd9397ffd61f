/* A command's typed value as text: PostgreSQL input spellings, shared by every writer of values. */
#ifndef PGSCRIBE_VALUE_H
#define PGSCRIBE_VALUE_H

#include <stddef.h>

#include "codec/command.h"

/** Room pgs_value_text needs in its buffer. */
#define PGS_VALUE_TEXT_MAX 40

/**
 * @brief Text of a bool, long, double or string value, spelled as PostgreSQL's
 *        input functions read it ("true", "-12", "1.5", "NaN", "Infinity").
 *        Doubles use 17 significant digits, so the text reads back to the
 *        same double.
 * @returns the text (@p buf or the value's own string) and its length in
 *          *len; NULL for null and bytes values.
 */
const char *pgs_value_text(const pgs_value_t *v, char *buf, size_t *len);

/** @returns float8in's spelling of NaN or an infinity ("NaN", "Infinity",
 *           "-Infinity"), which no number syntax can carry; NULL for a finite
 *           @p d. */
const char *pgs_value_double_special(double d);

#endif
