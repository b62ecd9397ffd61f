/* String buffer for SQL text built from the catalog. */
#include "common/sbuf.h"
#include "common/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pgs_sbuf_reserve(pgs_sbuf_t *sb, size_t more)
{
    if (sb->len + more + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 1024;
    while (cap < sb->len + more + 1)
        cap *= 2;
    sb->buf = pgs_xalloc_realloc(sb->buf, cap);
    sb->cap = cap;
}

void pgs_sbuf_puts(pgs_sbuf_t *sb, const char *s)
{
    size_t n = strlen(s);
    pgs_sbuf_reserve(sb, n);
    memcpy(sb->buf + sb->len, s, n + 1);
    sb->len += n;
}

void pgs_sbuf_printf(pgs_sbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    pgs_sbuf_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* @p q delimits the text and is doubled inside it: '"' gives the quoted
 * identifier PQescapeIdentifier would, '\'' a standard SQL string literal. */
void pgs_sbuf_quoted(pgs_sbuf_t *sb, const char *s, char q)
{
    pgs_sbuf_reserve(sb, 2 * strlen(s) + 2);
    sb->buf[sb->len++] = q;
    for (; *s; s++) {
        if (*s == q)
            sb->buf[sb->len++] = q;
        sb->buf[sb->len++] = *s;
    }
    sb->buf[sb->len++] = q;
    sb->buf[sb->len] = '\0';
}

void pgs_sbuf_putn(pgs_sbuf_t *sb, const char *s, size_t n)
{
    pgs_sbuf_reserve(sb, n);
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}
