/* Complete: a finished work releases its lane and its offset. */
#ifndef PGSCRIBE_COMPLETE_H
#define PGSCRIBE_COMPLETE_H

#include <stdint.h>

#include "run/work.h"

typedef struct pgs_worker_s pgs_worker_t;

/**
 * @brief The work is finished (applied, duplicate, or dead letter acked):
 *        its lane moves on and its offset may be stored. Frees the work.
 * @locality main thread; also librdkafka callback (main thread, inside
 *           rd_kafka_poll of the producer: pgs_dlq_delivery_cb)
 */
void pgs_complete_work(pgs_worker_t *w, pgs_work_t *work);
/**
 * @brief Frees a work that will not complete here (revoked partition).
 * @locality main thread; also librdkafka callback (through pgs_complete_work)
 */
void pgs_complete_work_free(pgs_worker_t *w, pgs_work_t *work);
/**
 * @brief Counts a dead letter the broker acknowledged: dead_lettered (command
 *        stream), and a tenant violation under the message's clinic when its
 *        class is tenant.
 * @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb)
 */
void pgs_complete_count_dead_letter(pgs_worker_t *w, const pgs_work_t *work);
/**
 * @brief Adds a committed transaction to its clinic's interval counters:
 *        @p applied commands newly applied (one target row each), @p bytes
 *        of their values, @p db_time_us from BEGIN to COMMIT's answer.
 */
void pgs_complete_count_applied(pgs_worker_t *w, const char *clinic_id, int64_t applied,
                                int64_t bytes, int64_t db_time_us);

#endif
