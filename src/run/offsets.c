/* Offset watermark: completed offsets become storable only as a contiguous prefix. */
#include "run/offsets.h"

#include <stdlib.h>

#define PGS_OFFSETS_INITIAL 256 /* power of two: ring indexes use a mask */

typedef struct {
    int64_t offset;
    int done;
} pgs_offset_entry_t;

struct pgs_offsets_s {
    pgs_offset_entry_t *ring;
    size_t mask;
    size_t head;  /* ring index of the oldest tracked entry */
    size_t count; /* tracked entries not yet popped */
    size_t incomplete;
    int64_t last_tracked; /* -1 before the first track */
    int64_t position;     /* last popped offset + 1, -1 before any */
    int64_t committed;    /* last value handed out by committable() */
};

pgs_offsets_t *pgs_offsets_new(void)
{
    pgs_offsets_t *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->ring = malloc(PGS_OFFSETS_INITIAL * sizeof(*o->ring));
    if (!o->ring) {
        free(o);
        return NULL;
    }
    o->mask = PGS_OFFSETS_INITIAL - 1;
    o->last_tracked = -1;
    o->position = -1;
    o->committed = -1;
    return o;
}

void pgs_offsets_free(pgs_offsets_t *o)
{
    if (!o)
        return;
    free(o->ring);
    free(o);
}

static pgs_offset_entry_t *entry_at(const pgs_offsets_t *o, size_t i)
{
    return &o->ring[(o->head + i) & o->mask];
}

static int grow(pgs_offsets_t *o)
{
    size_t size = (o->mask + 1) * 2;
    pgs_offset_entry_t *ring = malloc(size * sizeof(*ring));
    if (!ring)
        return -1;
    /* Unwrap so the entries start at index 0 of the new ring. */
    for (size_t i = 0; i < o->count; i++)
        ring[i] = *entry_at(o, i);
    free(o->ring);
    o->ring = ring;
    o->mask = size - 1;
    o->head = 0;
    return 0;
}

int pgs_offsets_track(pgs_offsets_t *o, int64_t offset)
{
    if (offset < 0 || offset <= o->last_tracked)
        return -1;
    if (o->count == o->mask + 1 && grow(o) != 0)
        return -1;
    pgs_offset_entry_t *e = entry_at(o, o->count);
    e->offset = offset;
    e->done = 0;
    o->count++;
    o->incomplete++;
    o->last_tracked = offset;
    return 0;
}

int pgs_offsets_done(pgs_offsets_t *o, int64_t offset)
{
    size_t lo = 0, hi = o->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_at(o, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == o->count)
        return -1;
    pgs_offset_entry_t *e = entry_at(o, lo);
    if (e->offset != offset)
        return -1;
    /* A duplicate completion (e.g. a redelivered result) is harmless. */
    if (e->done)
        return 0;
    e->done = 1;
    o->incomplete--;
    while (o->count > 0 && o->ring[o->head].done) {
        o->position = o->ring[o->head].offset + 1;
        o->head = (o->head + 1) & o->mask;
        o->count--;
    }
    return 0;
}

int64_t pgs_offsets_committable(pgs_offsets_t *o)
{
    if (o->position == o->committed)
        return -1;
    o->committed = o->position;
    return o->position;
}

int64_t pgs_offsets_position(const pgs_offsets_t *o)
{
    return o->position;
}

size_t pgs_offsets_pending(const pgs_offsets_t *o)
{
    return o->count;
}

size_t pgs_offsets_incomplete(const pgs_offsets_t *o)
{
    return o->incomplete;
}
