/* Consumer lag: high watermark minus the position, where the position of a
 * partition that has handed no message yet is its committed offset, fetched
 * without blocking when the partition is assigned. */
#ifndef PGSCRIBE_LAG_H
#define PGSCRIBE_LAG_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct pgs_worker_s pgs_worker_t;

/** pgs_partition_t.committed before the group coordinator has answered. */
#define PGS_LAG_COMMITTED_UNKNOWN (-2)
/** pgs_partition_t.committed when the group has no offset for it (it starts
 *  at the low watermark, auto.offset.reset=earliest). */
#define PGS_LAG_COMMITTED_NONE (-1)

/**
 * @brief Asks the group coordinator, asynchronously, for the committed
 *        offsets of newly assigned @p parts; answered into pgs_lag_serve.
 * @locality librdkafka callback (rebalance, main thread); never blocks
 */
void pgs_lag_request(pgs_worker_t *w, rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts);
/**
 * @brief Records the committed offsets that have arrived.
 * @locality main thread; never blocks
 */
void pgs_lag_serve(pgs_worker_t *w);
/**
 * @brief Lag of the commands stream: over its assigned partitions, the cached
 *        high watermark minus the next offset to store, or minus the committed
 *        offset while no message has been handed (a partition whose committed
 *        offset is not known yet counts 0, never the whole partition).
 * @locality main thread; never blocks
 */
int64_t pgs_lag_commands(pgs_worker_t *w);

typedef struct pgs_stream_s pgs_stream_t;
typedef struct pgs_partition_s pgs_partition_t;
/**
 * @brief Lag of one partition of @p st, as pgs_lag_commands counts it.
 * @returns the lag, or -1 when the partition is not assigned or its high
 *          watermark is not known yet.
 * @locality main thread; never blocks
 */
int64_t pgs_lag_partition(pgs_worker_t *w, const pgs_stream_t *st, const pgs_partition_t *p);

#endif
