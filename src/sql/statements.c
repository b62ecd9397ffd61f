/* Statement registry: shapes → SQL text, prepared names and latency, found
 * through a hash index (thousands of shapes are normal for partial updates)
 * and kept as an LRU of at most apply.max_statements entries. */
#include "sql/statements.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"

/* A handle is the slot in its low bits and the slot's generation above, so
 * a handle kept across an eviction reads as gone, not as the new shape. */
#define SLOT_BITS 16
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK  0x7fffu

typedef struct {
    pgs_stmt_t s;
    int live;
    unsigned gen;
    int prev, next; /* LRU list, most recent first; -1 ends it */
    uint64_t used;  /* epoch of the last use */
} slot_t;

struct pgs_stmts_s {
    char *schema;
    size_t max;
    slot_t *v;
    size_t nslots, cap;
    int *free_slots;
    size_t nfree;
    int head, tail;
    size_t live;
    int32_t *index; /* open addressing: slot + 1, 0 = empty */
    size_t index_cap;
    uint64_t next_serial, epoch, evicted;
};

pgs_stmts_t *pgs_statements_new(const char *schema, size_t max)
{
    pgs_stmts_t *st = pgs_xalloc_calloc(1, sizeof(*st));
    st->schema = pgs_xalloc_strdup(schema);
    st->max = max ? max : 1;
    if (st->max > SLOT_MASK / 2)
        st->max = SLOT_MASK / 2;
    st->index_cap = 256;
    st->index = pgs_xalloc_calloc(st->index_cap, sizeof(*st->index));
    st->head = st->tail = -1;
    st->epoch = 1;
    return st;
}

void pgs_statements_free(pgs_stmts_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nslots; i++)
        free(st->v[i].s.sql);
    free(st->v);
    free(st->free_slots);
    free(st->index);
    free(st->schema);
    free(st);
}

void pgs_statements_epoch(pgs_stmts_t *st)
{
    st->epoch++;
}

static uint64_t key_hash(int batch, const pgs_bshape_t *bs)
{
    return bs->shape.hash * 31u + (uint64_t)batch;
}

static int same(const pgs_stmt_t *s, int batch, const pgs_bshape_t *bs)
{
    if (s->batch != batch)
        return 0;
    return batch ? pgs_sqlbatch_shape_equal(&s->bs, bs)
                 : pgs_sqlgen_shape_equal(&s->bs.shape, &bs->shape);
}

static void lru_unlink(pgs_stmts_t *st, int i)
{
    slot_t *e = &st->v[i];
    if (e->prev >= 0)
        st->v[e->prev].next = e->next;
    else
        st->head = e->next;
    if (e->next >= 0)
        st->v[e->next].prev = e->prev;
    else
        st->tail = e->prev;
    e->prev = e->next = -1;
}

static void lru_push_front(pgs_stmts_t *st, int i)
{
    slot_t *e = &st->v[i];
    e->prev = -1;
    e->next = st->head;
    if (st->head >= 0)
        st->v[st->head].prev = i;
    st->head = i;
    if (st->tail < 0)
        st->tail = i;
}

static void index_put(pgs_stmts_t *st, int slot)
{
    size_t mask = st->index_cap - 1;
    size_t i = key_hash(st->v[slot].s.batch, &st->v[slot].s.bs) & mask;
    while (st->index[i])
        i = (i + 1) & mask;
    st->index[i] = slot + 1;
}

/* Linear probing's deletion: later entries of the run move back into the
 * hole when their home position allows it, so no lookup stops short. */
static void index_remove(pgs_stmts_t *st, int slot)
{
    size_t mask = st->index_cap - 1;
    size_t i = key_hash(st->v[slot].s.batch, &st->v[slot].s.bs) & mask;
    while (st->index[i] != slot + 1)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; st->index[j]; j = (j + 1) & mask) {
        const slot_t *o = &st->v[st->index[j] - 1];
        size_t home = key_hash(o->s.batch, &o->s.bs) & mask;
        /* the entry at j may fill i when its home is not in (i, j] */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            st->index[i] = st->index[j];
            i = j;
        }
    }
    st->index[i] = 0;
}

static void evict(pgs_stmts_t *st, int i)
{
    slot_t *e = &st->v[i];
    pgs_debug("apply", "statement %s evicted (%s on %s)", e->s.name,
              pgs_command_op_name(e->s.bs.shape.op), e->s.bs.shape.ent->name);
    index_remove(st, i);
    lru_unlink(st, i);
    free(e->s.sql);
    e->s.sql = NULL;
    e->live = 0;
    e->gen = (e->gen + 1) & GEN_MASK;
    st->free_slots[st->nfree++] = i;
    st->live--;
    st->evicted++;
}

static int handle_of(const pgs_stmts_t *st, int i)
{
    return (int)((st->v[i].gen << SLOT_BITS) | (unsigned)i);
}

static int new_slot(pgs_stmts_t *st)
{
    if (st->nfree > 0)
        return st->free_slots[--st->nfree];
    if (st->nslots == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        if (st->cap > SLOT_MASK + 1) {
            pgs_error("apply", "statement registry: more than %u statements in use at once",
                      SLOT_MASK + 1);
            abort();
        }
        st->v = pgs_xalloc_realloc(st->v, st->cap * sizeof(*st->v));
        st->free_slots = pgs_xalloc_realloc(st->free_slots, st->cap * sizeof(int));
    }
    memset(&st->v[st->nslots], 0, sizeof(st->v[0]));
    return (int)st->nslots++;
}

static int lookup(pgs_stmts_t *st, int batch, const pgs_bshape_t *bs)
{
    size_t mask = st->index_cap - 1;
    for (size_t i = key_hash(batch, bs) & mask; st->index[i]; i = (i + 1) & mask) {
        int slot = st->index[i] - 1;
        if (same(&st->v[slot].s, batch, bs)) {
            slot_t *e = &st->v[slot];
            e->used = st->epoch;
            if (st->head != slot) {
                lru_unlink(st, slot);
                lru_push_front(st, slot);
            }
            return handle_of(st, slot);
        }
    }
    /* the least recently used go, but none the transaction being built uses */
    while (st->live >= st->max && st->tail >= 0 && st->v[st->tail].used != st->epoch)
        evict(st, st->tail);
    if (2 * (st->live + 1) > st->index_cap) {
        free(st->index);
        st->index_cap *= 2;
        st->index = pgs_xalloc_calloc(st->index_cap, sizeof(*st->index));
        for (size_t k = 0; k < st->nslots; k++) {
            if (st->v[k].live)
                index_put(st, (int)k);
        }
    }
    int slot = new_slot(st);
    slot_t *e = &st->v[slot];
    unsigned gen = e->gen;
    memset(e, 0, sizeof(*e));
    e->gen = gen;
    e->live = 1;
    e->used = st->epoch;
    pgs_stmt_t *s = &e->s;
    s->batch = batch;
    s->bs = *bs;
    s->sql = batch ? pgs_sqlbatch_statement(st->schema, bs)
                   : pgs_sqlgen_statement(st->schema, &bs->shape);
    /* the low bit tells a multi-row statement from a single-command one, so
     * the name a connection rebuilds from a serial keeps its kind */
    s->serial = (++st->next_serial << 1) | (uint64_t)(batch != 0);
    pgs_statements_name(s->serial, s->name, sizeof(s->name));
    pgs_latency_init(&s->latency);
    pgs_debug("apply", "new %s statement %s for %s op=%s", batch ? "multi-row" : "single", s->name,
              bs->shape.ent->name, pgs_command_op_name(bs->shape.op));
    index_put(st, slot);
    lru_push_front(st, slot);
    st->live++;
    return handle_of(st, slot);
}

int pgs_statements_single(pgs_stmts_t *st, const pgs_shape_t *shape)
{
    pgs_bshape_t bs = {.shape = *shape, .mask = 0};
    return lookup(st, 0, &bs);
}

int pgs_statements_batch(pgs_stmts_t *st, const pgs_bshape_t *bs)
{
    return lookup(st, 1, bs);
}

pgs_stmt_t *pgs_statements_get(pgs_stmts_t *st, int handle)
{
    if (handle < 0)
        return NULL;
    size_t slot = (unsigned)handle & SLOT_MASK;
    if (slot >= st->nslots || !st->v[slot].live ||
        st->v[slot].gen != ((unsigned)handle >> SLOT_BITS))
        return NULL;
    return &st->v[slot].s;
}

size_t pgs_statements_slot(int handle)
{
    return (unsigned)handle & SLOT_MASK;
}

uint64_t pgs_statements_slot_serial(const pgs_stmts_t *st, size_t slot)
{
    return slot < st->nslots && st->v[slot].live ? st->v[slot].s.serial : 0;
}

void pgs_statements_name(uint64_t serial, char *buf, size_t size)
{
    snprintf(buf, size, "pgs_%c%llu", serial & 1 ? 'b' : 's', (unsigned long long)(serial >> 1));
}

size_t pgs_statements_drop_catalog(pgs_stmts_t *st, const pgs_catalog_t *cat)
{
    size_t dropped = 0;
    size_t nent = pgs_catalog_entity_count(cat);
    for (size_t i = 0; i < st->nslots; i++) {
        if (!st->v[i].live)
            continue;
        for (size_t k = 0; k < nent; k++) {
            if (st->v[i].s.bs.shape.ent == pgs_catalog_entity_at(cat, k)) {
                evict(st, (int)i);
                dropped++;
                break;
            }
        }
    }
    return dropped;
}

size_t pgs_statements_count(const pgs_stmts_t *st)
{
    return st->live;
}

uint64_t pgs_statements_evicted(const pgs_stmts_t *st)
{
    return st->evicted;
}
