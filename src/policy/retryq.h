/* A pending-retry set, pure code: items a delivery refused, each with its
 * failure count and the time its next try is due (full-jitter backoff). */
#ifndef PGSCRIBE_RETRYQ_H
#define PGSCRIBE_RETRYQ_H

#include <stddef.h>
#include <stdint.h>

/** One pending item: waiting for its due time, or tried again and in flight. */
typedef struct {
    void *item;
    int failures; /* refusals so far */
    int flags;    /* the caller's, kept with the item (e.g. "send without value") */
    int waiting;  /* 1: due at due_us; 0: tried again, its outcome not yet known */
    int64_t due_us;
} pgs_retryq_entry_t;

typedef struct {
    pgs_retryq_entry_t *v;
    size_t cnt, cap;
    int64_t initial_us, max_us; /* backoff bounds */
    uint64_t rng;               /* xorshift state, never 0 */
} pgs_retryq_t;

/** @brief An empty set with backoff bounds @p initial_us .. @p max_us. */
void pgs_retryq_init(pgs_retryq_t *q, int64_t initial_us, int64_t max_us, uint64_t seed);
void pgs_retryq_free(pgs_retryq_t *q);
/**
 * @brief Records a refusal of @p item (new, or tried again): it waits a
 *        full-jitter delay grown with its failure count from @p now_us;
 *        @p flags are added to those it has.
 * @returns its failure count.
 * @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb);
 *           pure, no I/O, never re-enters librdkafka.
 */
int pgs_retryq_fail(pgs_retryq_t *q, void *item, int flags, int64_t now_us);
/**
 * @brief Takes one waiting item whose time has come: it stays in the set,
 *        in flight, until pgs_retryq_done or another pgs_retryq_fail.
 * @returns the item (its flags in @p flags), or NULL when none is due.
 */
void *pgs_retryq_take_due(pgs_retryq_t *q, int64_t now_us, int *flags);
/** @brief Forgets @p item (delivered). @returns 1 if it was pending. */
int pgs_retryq_done(pgs_retryq_t *q, void *item);
/** @returns the number of pending items, waiting or in flight. */
size_t pgs_retryq_count(const pgs_retryq_t *q);

#endif
