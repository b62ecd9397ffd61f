/* Arena allocator: chunks chained together, released in one call. */
#include "common/arena.h"
#include "common/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pgs_chunk_s {
    struct pgs_chunk_s *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
} pgs_chunk_t;

struct pgs_arena_s {
    pgs_chunk_t *head;
    size_t hint;
};

/* The first chunk is allocated with the arena itself, right after it: one
 * malloc per arena (each command has one), not two. */
#define FIRST_OFFSET ((sizeof(struct pgs_arena_s) + 15) & ~(size_t)15)

static pgs_chunk_t *first_chunk(pgs_arena_t *a)
{
    return (pgs_chunk_t *)(void *)((unsigned char *)a + FIRST_OFFSET);
}

static pgs_chunk_t *chunk_new(size_t size)
{
    pgs_chunk_t *c = pgs_xalloc_malloc(sizeof(*c) + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

pgs_arena_t *pgs_arena_new(size_t hint)
{
    hint = hint < 256 ? 256 : hint;
    pgs_arena_t *a = pgs_xalloc_malloc(FIRST_OFFSET + sizeof(pgs_chunk_t) + hint);
    pgs_chunk_t *first = first_chunk(a);
    first->next = NULL;
    first->size = hint;
    first->used = 0;
    a->hint = hint;
    a->head = first;
    return a;
}

void pgs_arena_free(pgs_arena_t *a)
{
    if (!a)
        return;
    pgs_chunk_t *first = first_chunk(a);
    pgs_chunk_t *c = a->head;
    while (c) {
        pgs_chunk_t *n = c->next;
        if (c != first)
            free(c);
        c = n;
    }
    free(a);
}

void *pgs_arena_alloc(pgs_arena_t *a, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    pgs_chunk_t *c = a->head;
    if (c->used + need > c->size) {
        size_t csize = a->hint * 2 > need ? a->hint * 2 : need;
        a->hint = csize;
        c = chunk_new(csize);
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    memset(p, 0, size);
    return p;
}

char *pgs_arena_strndup(pgs_arena_t *a, const char *s, size_t len)
{
    char *p = pgs_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *pgs_arena_strdup(pgs_arena_t *a, const char *s)
{
    return pgs_arena_strndup(a, s, strlen(s));
}
