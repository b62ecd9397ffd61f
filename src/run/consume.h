/* Consume: the Kafka consumer of both streams' topics, its offsets, pauses
 * and rebalances. */
#ifndef PGSCRIBE_CONSUME_H
#define PGSCRIBE_CONSUME_H

#include <stddef.h>
#include <stdint.h>

#include "run/work.h"

typedef struct pgs_worker_s pgs_worker_t;

int pgs_consume_start(pgs_worker_t *w, char *errstr, size_t errstr_size);
/**
 * @brief When a pool's new connection found another database than the one of
 *        the last rewind check (a standby promoted, a restore; it took no
 *        work), stops the worker to start again in-process
 *        (restart_to_rewind), so that its next assignment rewinds what the
 *        database forgot.
 * @locality main thread; no I/O
 */
void pgs_consume_check_identity(pgs_worker_t *w);
/** @brief Polls up to @p max messages and hands each to intake. @returns count. */
int pgs_consume_poll(pgs_worker_t *w, int max);
/** @brief Stores every partition's committable offset.
 *  @locality main thread; also librdkafka callback (rebalance, through
 *            pgs_revoke_begin) */
void pgs_consume_store_offsets(pgs_worker_t *w);
/**
 * @brief Starts leaving the group: the close revokes every partition through
 *        the rebalance callback, served by pgs_consume_close_serve.
 * @returns 0 when the close is under way, -1 when there is nothing to close
 *          or it could not start.
 */
int pgs_consume_close_start(pgs_worker_t *w);
/**
 * @brief Serves the closing consumer's queue (its rebalance callback) once.
 *        The caller's event loop drains the revocation meanwhile.
 * @returns 1 once the consumer is closed, else 0.
 */
int pgs_consume_close_serve(pgs_worker_t *w);
void pgs_consume_update_pauses(pgs_worker_t *w);
/** @locality main thread; also librdkafka callback (rebalance, inside
 *            rd_kafka_consumer_poll or while the consumer closes) */
pgs_partition_t *pgs_consume_partition_get(pgs_stream_t *stream, int32_t partition);
/** @brief The stream consuming @p topic, or NULL.
 *  @locality main thread; also librdkafka callback (rebalance) */
pgs_stream_t *pgs_consume_stream_of_topic(pgs_worker_t *w, const char *topic);

#endif
