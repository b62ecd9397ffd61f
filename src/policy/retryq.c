/* A pending-retry set: refused deliveries waiting out a full-jitter backoff.
 * Linear scans: the set holds only what the broker refused, a handful. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "policy/backoff.h"
#include "policy/retryq.h"

void pgs_retryq_init(pgs_retryq_t *q, int64_t initial_us, int64_t max_us, uint64_t seed)
{
    memset(q, 0, sizeof(*q));
    q->initial_us = initial_us;
    q->max_us = max_us;
    q->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

void pgs_retryq_free(pgs_retryq_t *q)
{
    free(q->v);
    q->v = NULL;
    q->cnt = q->cap = 0;
}

static pgs_retryq_entry_t *find(pgs_retryq_t *q, const void *item)
{
    for (size_t i = 0; i < q->cnt; i++) {
        if (q->v[i].item == item)
            return &q->v[i];
    }
    return NULL;
}

int pgs_retryq_fail(pgs_retryq_t *q, void *item, int flags, int64_t now_us)
{
    pgs_retryq_entry_t *e = find(q, item);
    if (!e) {
        if (q->cnt == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 8;
            q->v = pgs_xalloc_realloc(q->v, q->cap * sizeof(*q->v));
        }
        e = &q->v[q->cnt++];
        memset(e, 0, sizeof(*e));
        e->item = item;
    }
    e->failures++;
    e->flags |= flags;
    e->waiting = 1;
    e->due_us = now_us + pgs_backoff_delay_us(e->failures, q->initial_us, q->max_us, &q->rng);
    return e->failures;
}

void *pgs_retryq_take_due(pgs_retryq_t *q, int64_t now_us, int *flags)
{
    for (size_t i = 0; i < q->cnt; i++) {
        pgs_retryq_entry_t *e = &q->v[i];
        if (e->waiting && e->due_us <= now_us) {
            e->waiting = 0;
            if (flags)
                *flags = e->flags;
            return e->item;
        }
    }
    return NULL;
}

int pgs_retryq_done(pgs_retryq_t *q, void *item)
{
    pgs_retryq_entry_t *e = find(q, item);
    if (!e)
        return 0;
    *e = q->v[--q->cnt];
    return 1;
}

size_t pgs_retryq_count(const pgs_retryq_t *q)
{
    return q->cnt;
}
