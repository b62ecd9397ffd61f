/* Allocation that cannot fail gracefully: out of memory prints a line and aborts. */
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *checked(void *p)
{
    /* no caller of these has an error path, so running out of memory is
     * fatal, with a line saying so rather than a bare SIGABRT */
    if (!p) {
        fputs("pgscribe: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *pgs_xalloc_malloc(size_t size)
{
    return checked(malloc(size ? size : 1));
}

void *pgs_xalloc_calloc(size_t n, size_t size)
{
    return checked(calloc(n ? n : 1, size ? size : 1));
}

void *pgs_xalloc_realloc(void *p, size_t size)
{
    return checked(realloc(p, size ? size : 1));
}

char *pgs_xalloc_strdup(const char *s)
{
    size_t len = strlen(s);
    char *p = pgs_xalloc_malloc(len + 1);
    memcpy(p, s, len + 1);
    return p;
}
