/* Allocation that cannot fail gracefully: out of memory prints a line and aborts. */
#ifndef PGSCRIBE_XALLOC_H
#define PGSCRIBE_XALLOC_H

#include <stddef.h>

/** @brief malloc, calloc, realloc and strdup/strndup that abort with
 *         "pgscribe: out of memory" instead of returning NULL. For callers with
 *         no error path (the arena, string buffers, registries); code that can
 *         refuse one message must use the plain functions and check. */
void *pgs_xalloc_malloc(size_t size);
void *pgs_xalloc_calloc(size_t n, size_t size);
void *pgs_xalloc_realloc(void *p, size_t size);
char *pgs_xalloc_strdup(const char *s);

#endif
