/* OTLP/HTTP sender: POSTs trace batches (application/json) to an OTLP
 * endpoint from a thread of its own, through a bounded queue, so the
 * worker's loop never waits for the endpoint. */
#ifndef PGSCRIBE_OTLPHTTP_H
#define PGSCRIBE_OTLPHTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgs_otlphttp_s pgs_otlphttp_t;

/** @brief Starts the sender thread. @returns NULL with @p errstr filled. */
pgs_otlphttp_t *pgs_otlphttp_new(const char *endpoint, size_t queue_max, long timeout_ms,
                                 char *errstr, size_t errstr_size);
/**
 * @brief Queues @p body (malloc'd; the sender owns it from here on) holding
 *        @p nspans spans.
 * @returns 0, or -1 when the queue is full: @p body is freed and its spans
 *          counted as dropped.
 * @locality main thread
 */
int pgs_otlphttp_post(pgs_otlphttp_t *h, char *body, size_t nspans);
/** @returns spans dropped: queue full, or the endpoint failed or refused. */
int64_t pgs_otlphttp_dropped(const pgs_otlphttp_t *h);
/** @returns spans the endpoint accepted (2xx). */
int64_t pgs_otlphttp_sent(const pgs_otlphttp_t *h);
/** @brief Sends what is queued (each POST within its timeout), stops the
 *         thread and frees the sender. */
void pgs_otlphttp_free(pgs_otlphttp_t *h);

#endif
