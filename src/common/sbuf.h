/* A growable string buffer for building SQL text; aborts on out-of-memory. */
#ifndef PGSCRIBE_SBUF_H
#define PGSCRIBE_SBUF_H

#include <stddef.h>

typedef struct {
    char *buf; /* NUL-terminated, malloc'd; the caller frees it */
    size_t len;
    size_t cap;
} pgs_sbuf_t;

void pgs_sbuf_reserve(pgs_sbuf_t *sb, size_t more);
void pgs_sbuf_puts(pgs_sbuf_t *sb, const char *s);
void pgs_sbuf_putn(pgs_sbuf_t *sb, const char *s, size_t n);
void pgs_sbuf_printf(pgs_sbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @brief Appends @p s delimited by @p q, doubling @p q inside: '"' gives a
 *         quoted identifier (as PQescapeIdentifier), '\'' a SQL literal. */
void pgs_sbuf_quoted(pgs_sbuf_t *sb, const char *s, char q);

#endif
