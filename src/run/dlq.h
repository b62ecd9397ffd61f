/* Dead letters: produced with the original message and the reason. */
#ifndef PGSCRIBE_DLQ_H
#define PGSCRIBE_DLQ_H

#include <librdkafka/rdkafka.h>

#include "policy/error.h"
#include "run/work.h"

typedef struct pgs_worker_s pgs_worker_t;

/**
 * @brief Produces the dead letter of @p work; the work completes when the
 *        broker acknowledges it. @p code is the dead-letter code (a SQLSTATE
 *        for database errors) or NULL for pgs_error_code(err); @p msg is PHI-free.
 */
void pgs_dlq_send(pgs_worker_t *w, pgs_work_t *work, pgs_err_t err, const char *code,
                  const char *msg);
/** @brief Sets up the pending set of refused dead letters. */
void pgs_dlq_init(pgs_worker_t *w);
/**
 * @brief Produces again the refused dead letters whose backoff is over.
 * @locality main thread; never inside a librdkafka callback
 */
void pgs_dlq_retry_due(pgs_worker_t *w);
/** @returns the dead letters refused and not yet delivered. */
size_t pgs_dlq_pending(const pgs_worker_t *w);
/**
 * @brief Delivery-report callback of the shared producer: completes an
 *        acknowledged dead letter; a refused one is only recorded.
 * @locality librdkafka callback (main thread, inside rd_kafka_poll or
 *           rd_kafka_flush of the producer)
 */
void pgs_dlq_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);

#endif
