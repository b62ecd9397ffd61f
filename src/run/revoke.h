/* Revoke: partitions taken away by a rebalance are marked in the rebalance
 * callback and drained, committed and given up by the main loop. */
#ifndef PGSCRIBE_REVOKE_H
#define PGSCRIBE_REVOKE_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

typedef struct pgs_worker_s pgs_worker_t;

/** A revocation waiting for its drain; at most one at a time (the group
 *  does not rebalance again before the unassignment is done). */
typedef struct {
    rd_kafka_topic_partition_list_t *parts; /* NULL when none is pending */
    int lost;                               /* already owned by another member */
    int cooperative;                        /* incremental unassign, else assign(NULL) */
    int committing;                         /* drained; committing their offsets */
    int commit_attempts;
    int64_t started_us;
    int64_t deadline_us;
    int64_t commit_at_us; /* next commit attempt after a retryable failure */
    size_t purged, left;  /* for the log line */
} pgs_revoke_t;

/**
 * @brief Marks @p parts revoking: they take no more messages and their
 *        committable offsets are stored; the drain itself is left to
 *        pgs_revoke_serve. Returns at once.
 * @locality librdkafka callback (main thread, inside rd_kafka_consumer_poll,
 *           or inside rd_kafka_queue_poll_callback while the consumer closes)
 */
void pgs_revoke_begin(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *parts, int lost,
                      int cooperative);
/** @returns 1 while a revocation waits for its drain or commit.
 *  @locality main thread; also librdkafka callback (rebalance) */
int pgs_revoke_pending(const pgs_worker_t *w);
/**
 * @brief One turn of the revocation: once the revoking partitions' works
 *        are done (or the drain deadline passed, or both breakers are open,
 *        or the assignment was lost), releases their queued works, commits
 *        their completed prefix and completes the unassignment.
 * @locality main thread, between event-loop turns
 */
void pgs_revoke_serve(pgs_worker_t *w);
/**
 * @brief Completes a pending revocation now, without waiting for its works.
 * @locality main thread; also librdkafka callback (rebalance: an assignment
 *           arriving while a revocation is pending)
 */
void pgs_revoke_finish_now(pgs_worker_t *w);

#endif
