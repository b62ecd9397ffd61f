/* Waiting until a Kafka topic can take writes on every partition. */
#ifndef PGSCRIBE_TOPICREADY_H
#define PGSCRIBE_TOPICREADY_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/**
 * @brief Waits until @p topic is in the cluster metadata with a leader for
 *        every partition and every partition's leader answers a watermark
 *        query (its log is loaded).
 *
 * A topic that was just created is announced in the metadata before its
 * partitions' logs exist; producing into that window has been seen to lose
 * the first message of a partition with librdkafka 2.0.2's idempotent
 * producer against Kafka 4.1 while reporting it delivered. `pgscribe topics`
 * and `pgscribe produce` therefore wait for this before the first message.
 *
 * @param partitions receives the partition count when not NULL.
 * @returns 0 when ready, -1 after @p timeout_ms with the last reason in @p err.
 */
int pgs_topicready_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int *partitions,
                        char *err, size_t err_size);

#endif
