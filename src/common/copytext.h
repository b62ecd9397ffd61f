/* PostgreSQL's COPY text format, the writing side: one field of a row,
 * escaped so that COPY ... FROM STDIN reads back exactly @p len bytes. */
#ifndef PGSCRIBE_COPYTEXT_H
#define PGSCRIBE_COPYTEXT_H

#include <stddef.h>

#include "common/sbuf.h"

/** @brief Appends @p len bytes of @p v as a COPY text field: backslash,
 *         tab, newline, carriage return, backspace, form feed and vertical
 *         tab are written as backslash escapes; NULL @p v writes \N. */
void pgs_copytext_field(pgs_sbuf_t *sb, const char *v, size_t len);

#endif
