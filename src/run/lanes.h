/* Key lanes: commands with the same (clinic, entity, key) form a lane and
 * run one at a time in arrival order; lanes are grouped by clinic and
 * groups are served by deficit round robin, each within its clinic's rate
 * limit (policy/ratelimit.h). Pure code. */
#ifndef PGSCRIBE_LANES_H
#define PGSCRIBE_LANES_H

#include <stddef.h>
#include <stdint.h>

#include "policy/ratelimit.h"

typedef struct pgs_lane_s pgs_lane_t;
typedef struct pgs_lanes_s pgs_lanes_t;

/** Embedded in the caller's work item (intrusive). */
typedef struct pgs_lane_item_s {
    struct pgs_lane_item_s *lane_next;  /* next item of the same lane */
    struct pgs_lane_item_s *ready_next; /* next ready item of the same group */
    pgs_lane_t *lane;
    int in_flight;
} pgs_lane_item_t;

pgs_lanes_t *pgs_lanes_new(void);
/** @brief Frees the lanes; items still queued are the caller's. */
void pgs_lanes_free(pgs_lanes_t *lanes);

/** @brief Appends @p item to the lane of @p key in clinic @p group. The item
 *         is ready at once if its lane was empty. */
void pgs_lanes_push(pgs_lanes_t *lanes, pgs_lane_item_t *item, const char *group, const char *key,
                    size_t key_len);

/**
 * @brief Rate limits (@p limits, the caller's, may be NULL: none) and the
 *        deficit round robin quantum (commands a group may take per round;
 *        0: a whole take each turn, as plain round robin).
 */
void pgs_lanes_set_limits(pgs_lanes_t *lanes, pgs_ratelimit_t *limits, size_t quantum);
/**
 * @brief Takes up to @p max ready items, all of one group: the next group in
 *        round-robin order that has ready items and tokens, at most its
 *        deficit (with two or more groups ready), and marks them in flight.
 *        A throttled group is passed over; its items stay ready.
 * @returns the number taken (0 when nothing is ready or every ready group
 *          is throttled).
 */
size_t pgs_lanes_take_at(pgs_lanes_t *lanes, pgs_lane_item_t **out, size_t max, int64_t now_us);
/** @brief pgs_lanes_take_at() now. */
size_t pgs_lanes_take(pgs_lanes_t *lanes, pgs_lane_item_t **out, size_t max);
/** @returns the items queued (in flight or not) in the lanes of @p group. */
size_t pgs_lanes_group_queued(const pgs_lanes_t *lanes, const char *group);

/** @brief The in-flight head of its lane is finished: removed, and the next
 *         item of the lane becomes ready.
 *  @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb,
 *            through pgs_complete_work, on the main thread inside rd_kafka_poll) */
void pgs_lanes_complete(pgs_lanes_t *lanes, pgs_lane_item_t *item);
/** @brief The in-flight head goes back to ready, at the front of its group. */
void pgs_lanes_retry(pgs_lanes_t *lanes, pgs_lane_item_t *item);

/**
 * @brief Removes every queued item that is not in flight and for which
 *        @p pred returns 1; calls @p drop on each (after unlinking).
 * @returns the number removed.
 */
size_t pgs_lanes_purge(pgs_lanes_t *lanes, int (*pred)(pgs_lane_item_t *item, void *opaque),
                       void (*drop)(pgs_lane_item_t *item, void *opaque), void *opaque);

size_t pgs_lanes_queued(const pgs_lanes_t *lanes); /* all items, in flight or not */
size_t pgs_lanes_ready(const pgs_lanes_t *lanes);  /* items ready to take */
size_t pgs_lanes_in_flight(const pgs_lanes_t *lanes);
/** @returns the clinic groups held: those with at least one lane. */
size_t pgs_lanes_groups(const pgs_lanes_t *lanes);

#endif
