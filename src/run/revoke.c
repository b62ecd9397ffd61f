/* Revoke: the rebalance callback only marks revoked partitions; the main
 * loop finishes what they have queued or in flight within the drain
 * deadline, commits their completed prefix and only then completes the
 * unassignment (librdkafka waits for that call before the group goes on). */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "run/complete.h"
#include "run/consume.h"
#include "run/pool.h"
#include "run/revoke.h"
#include "run/rewind.h"
#include "run/schemawait.h"
#include "run/worker.h"

/* Commit attempts when the coordinator moves or is busy, and the pause
 * between them: every offset not committed is consumed again by the next
 * owner (harmless, but work). */
#define REVOKE_COMMIT_ATTEMPTS 5
#define REVOKE_COMMIT_RETRY_US 200000

/** @locality main thread; also librdkafka callback (rebalance) */
static pgs_partition_t *part_of(pgs_worker_t *w, const rd_kafka_topic_partition_t *tp)
{
    pgs_stream_t *st = pgs_consume_stream_of_topic(w, tp->topic);
    return st ? pgs_consume_partition_get(st, tp->partition) : NULL;
}

/** @locality librdkafka callback (rebalance) */
static int listed(const rd_kafka_topic_partition_list_t *list, const char *topic, int32_t partition)
{
    return rd_kafka_topic_partition_list_find(list, topic, partition) != NULL;
}

void pgs_revoke_begin(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *parts, int lost,
                      int cooperative)
{
    pgs_revoke_t *r = &w->revoke;
    if (!r->parts) {
        memset(r, 0, sizeof(*r));
        r->parts = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
        r->started_us = pgs_clock_now_us();
        r->deadline_us = r->started_us + pgs_config_int(w->cfg, "shutdown.drain_timeout_ms") * 1000;
        r->cooperative = cooperative;
    }
    /* a second revocation before the first is done (its assignment lost
     * meanwhile) joins it */
    r->lost |= lost;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (!listed(r->parts, tp->topic, tp->partition))
            rd_kafka_topic_partition_list_add(r->parts, tp->topic, tp->partition);
        pgs_partition_t *p = part_of(w, tp);
        if (p && p->assigned)
            p->revoking = 1;
    }
    pgs_consume_store_offsets(w);
    pgs_debug("consume", "%s %d partition(s): draining", lost ? "lost" : "revoking", parts->cnt);
}

int pgs_revoke_pending(const pgs_worker_t *w)
{
    return w->revoke.parts != NULL;
}

/* @locality main thread; also librdkafka callback (rebalance: an assignment
 * arriving while a revocation is pending, through pgs_revoke_finish_now) */
static size_t parts_outstanding(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *parts)
{
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &parts->elems[i]);
        n += p ? p->outstanding : 0;
    }
    return n;
}

/* Queued (not in flight) works of revoking partitions are dropped; the next
 * owner consumes them again from the committed offset.
 * @locality main thread; also librdkafka callback (rebalance, through
 * pgs_revoke_finish_now) */
static int purge_pred(pgs_lane_item_t *item, void *opaque)
{
    (void)opaque;
    return ((const pgs_work_t *)item)->part->revoking;
}

static void purge_drop(pgs_lane_item_t *item, void *opaque)
{
    pgs_complete_work_free(opaque, (pgs_work_t *)item);
}

static int work_revoking(const pgs_work_t *wk)
{
    return wk->part->revoking;
}

/* The drain is over when nothing of the revoking partitions is left but
 * commands waiting for a catalog that knows their columns (they are in no
 * transaction, and their wait may outlast any drain), the deadline passed,
 * or nothing can finish: a lost assignment already has a new owner, and
 * with the database away (both breakers open) no work completes. */
static int drain_over(pgs_worker_t *w)
{
    const pgs_revoke_t *r = &w->revoke;
    const pgs_pool_t *cmds = w->streams[PGS_STREAM_COMMANDS].pool;
    const pgs_pool_t *audit = w->streams[PGS_STREAM_AUDIT].pool;
    /* (messages waiting for the schema registry are in no transaction either) */
    return r->lost ||
           parts_outstanding(w, r->parts) ==
               pgs_pool_held(cmds, work_revoking, 1) + pgs_schemawait_held(w, work_revoking) ||
           pgs_clock_now_us() >= r->deadline_us ||
           (cmds && audit && pgs_pool_breaker_open(cmds) && pgs_pool_breaker_open(audit));
}

/* @locality main thread; also librdkafka callback (rebalance: an assignment
 * arriving while a revocation is pending, through pgs_revoke_finish_now) */
static void release_queued(pgs_worker_t *w)
{
    pgs_revoke_t *r = &w->revoke;
    r->purged = 0;
    /* held back (a retry backoff, a wait for the catalog): in no transaction,
     * so released like the queued ones */
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        pgs_pool_unhold(w->streams[s].pool, work_revoking);
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        r->purged += pgs_lanes_purge(w->streams[s].lanes, purge_pred, purge_drop, w);
    r->purged += pgs_schemawait_release(w, work_revoking);
    r->left = parts_outstanding(w, r->parts);
    r->committing = 1;
}

/* @locality main thread; also librdkafka callback (rebalance: an assignment
 * arriving while a revocation is pending, through pgs_revoke_finish_now) */
static int commit_retryable(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
           err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

/* After a commit on revoke: each partition's committed position is final in
 * the database too, recorded as its resume checkpoint, so that a restart
 * that did not go back rewinds nothing (docs/dr.md). Only on the database
 * of the last rewind check (the function refuses another), and not while
 * the database is unreachable: then the next owner re-reads a short tail.
 * @locality main thread; also librdkafka callback (rebalance) */
static void checkpoint(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *done)
{
    if (!w->have_db_identity || done->cnt == 0)
        return;
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        if (w->streams[s].pool && pgs_pool_breaker_open(w->streams[s].pool))
            return;
    char errstr[256] = "", identity[48];
    pgs_rewind_identity_format(&w->db_identity, identity, sizeof(identity));
    PGconn *pg = pgs_rewind_connect(pgs_config_str(w->cfg, "pg.conninfo"), errstr, sizeof(errstr));
    int recorded = 0, refused = 0;
    for (int i = 0; pg && i < done->cnt; i++) {
        int rc = pgs_rewind_checkpoint(pg, done->elems[i].topic, done->elems[i].partition,
                                       done->elems[i].offset, identity);
        if (rc < 0)
            break;
        recorded += rc;
        refused += !rc;
    }
    if (recorded + refused < done->cnt)
        pgs_warn("consume", "resume checkpoints: %d of %d recorded: %s", recorded, done->cnt,
                 pg ? PQerrorMessage(pg) : errstr);
    else if (refused)
        pgs_warn("consume",
                 "resume checkpoints refused for %d partition(s): the database is not "
                 "the one of the last rewind check (%s)",
                 refused, identity);
    else
        pgs_debug("consume", "resume checkpoints recorded for %d partition(s)", recorded);
    PQfinish(pg);
}

/* One commit attempt of the revoking partitions' completed prefix.
 * @returns 0 to try again later, 1 when done (committed or given up).
 * @locality main thread; also librdkafka callback (rebalance, through
 * pgs_revoke_finish_now) */
static int commit_step(pgs_worker_t *w, int last)
{
    pgs_revoke_t *r = &w->revoke;
    if (!last && pgs_clock_now_us() < r->commit_at_us)
        return 0;
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(r->parts->cnt);
    for (int i = 0; i < r->parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &r->parts->elems[i]);
        int64_t pos = p && p->offsets ? pgs_offsets_position(p->offsets) : -1;
        if (pos >= 0)
            rd_kafka_topic_partition_list_add(commit, p->stream->topic, p->partition)->offset = pos;
    }
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (commit->cnt > 0)
        err = rd_kafka_commit(w->consumer, commit, 0);
    if (!err)
        checkpoint(w, commit);
    rd_kafka_topic_partition_list_destroy(commit);
    if (commit_retryable(err) && !last && ++r->commit_attempts < REVOKE_COMMIT_ATTEMPTS) {
        r->commit_at_us = pgs_clock_now_us() + REVOKE_COMMIT_RETRY_US;
        return 0;
    }
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        pgs_warn("consume", "commit on revoke failed: %s", rd_kafka_err2str(err));
    return 1;
}

/* Gives the partitions up: their trackers go, and librdkafka is told the
 * unassignment is done, which lets the group's rebalance go on.
 * @locality main thread; also librdkafka callback (rebalance, through
 * pgs_revoke_finish_now) */
static void finish(pgs_worker_t *w)
{
    pgs_revoke_t *r = &w->revoke;
    for (int i = 0; i < r->parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &r->parts->elems[i]);
        if (!p)
            continue;
        p->assigned = 0;
        p->revoking = 0;
        p->dirty = 0;
        pgs_offsets_free(p->offsets);
        p->offsets = NULL;
    }
    pgs_info("consume",
             "%s %d partition(s): %zu queued command(s) released, %zu still in flight, "
             "drained in %lld ms",
             r->lost ? "lost" : "revoked", r->parts->cnt, r->purged, r->left,
             (long long)((pgs_clock_now_us() - r->started_us) / 1000));
    if (r->cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(w->consumer, r->parts);
        if (error) {
            pgs_error("consume", "incremental unassign failed: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(w->consumer, NULL);
    }
    rd_kafka_topic_partition_list_destroy(r->parts);
    memset(r, 0, sizeof(*r));
}

void pgs_revoke_serve(pgs_worker_t *w)
{
    pgs_revoke_t *r = &w->revoke;
    if (!r->parts)
        return;
    if (!r->committing) {
        if (!drain_over(w))
            return;
        release_queued(w);
    }
    if (!r->lost && !commit_step(w, 0))
        return;
    finish(w);
}

void pgs_revoke_finish_now(pgs_worker_t *w)
{
    pgs_revoke_t *r = &w->revoke;
    if (!r->parts)
        return;
    if (!r->committing)
        release_queued(w);
    if (!r->lost)
        commit_step(w, 1);
    finish(w);
}
