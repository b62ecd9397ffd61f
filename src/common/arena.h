/* Arena: memory owned by one message or batch, freed in one call. */
#ifndef PGSCRIBE_ARENA_H
#define PGSCRIBE_ARENA_H

#include <stddef.h>

typedef struct pgs_arena_s pgs_arena_t;

/** @brief New arena whose first chunk holds at least @p hint bytes. */
pgs_arena_t *pgs_arena_new(size_t hint);
/** @brief Frees the arena and everything allocated from it. NULL is allowed. */
void pgs_arena_free(pgs_arena_t *arena);
/** @brief 16-byte aligned, zeroed memory; aborts on out-of-memory. */
void *pgs_arena_alloc(pgs_arena_t *arena, size_t size);
/** @brief Copy of @p len bytes plus a terminating NUL. */
char *pgs_arena_strndup(pgs_arena_t *arena, const char *s, size_t len);
char *pgs_arena_strdup(pgs_arena_t *arena, const char *s);

#endif
