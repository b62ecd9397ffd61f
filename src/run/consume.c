/* Consume: the Kafka consumer of the commands topic — offsets stored by
 * pgscribe only (never automatically) and only as the completed prefix,
 * partitions paused under back-pressure, and revoked partitions drained and
 * committed before they are given up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/kafkaconf.h"
#include "common/log.h"
#include "run/worker.h"

/* The assignment strategy. pgscribe drives both protocols (incremental
 * assign/unassign when cooperative), but the default is eager roundrobin:
 * with Debian's librdkafka 2.0.2, cooperative-sticky leaves partitions
 * revoked from one member unassigned until the next rebalance and fails
 * offset commits with ILLEGAL_GENERATION (librdkafka issues #4059, #3306,
 * fixed in later releases), which the handover test shows. Operators on a
 * newer librdkafka can set kafka.partition.assignment.strategy. */
#define PGS_ASSIGNMENT_STRATEGY "roundrobin"

pgs_partition_t *pgs_consume_partition_get(pgs_stream_t *st, int32_t partition)
{
    if (partition >= st->parts_cnt) {
        int32_t cnt = st->parts_cnt ? st->parts_cnt : 16;
        while (cnt <= partition)
            cnt *= 2;
        st->parts = realloc(st->parts, (size_t)cnt * sizeof(*st->parts));
        memset(st->parts + st->parts_cnt, 0, (size_t)(cnt - st->parts_cnt) * sizeof(*st->parts));
        st->parts_cnt = cnt;
    }
    if (!st->parts[partition]) {
        st->parts[partition] = calloc(1, sizeof(pgs_partition_t));
        st->parts[partition]->partition = partition;
        st->parts[partition]->stream = st;
    }
    return st->parts[partition];
}

pgs_stream_t *pgs_consume_stream_of_topic(pgs_worker_t *w, const char *topic)
{
    for (int i = 0; i < PGS_STREAM__COUNT; i++) {
        if (strcmp(w->streams[i].topic, topic) == 0)
            return &w->streams[i];
    }
    return NULL;
}

static pgs_partition_t *part_of(pgs_worker_t *w, const rd_kafka_topic_partition_t *tp)
{
    pgs_stream_t *st = pgs_consume_stream_of_topic(w, tp->topic);
    return st ? pgs_consume_partition_get(st, tp->partition) : NULL;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
    if (rd_kafka_conf_set(conf, name, value, errstr, errstr_size) != RD_KAFKA_CONF_OK)
        return -1;
    return 0;
}

/* Drops queued (not in flight) works of revoked partitions; the next owner
 * consumes them again from the committed offset. */
static int purge_pred(pgs_lane_item_t *item, void *opaque)
{
    const rd_kafka_topic_partition_list_t *parts = opaque;
    const pgs_work_t *work = (const pgs_work_t *)item;
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == work->part->partition &&
            strcmp(parts->elems[i].topic, work->part->stream->topic) == 0)
            return 1;
    }
    return 0;
}

static void purge_drop(pgs_lane_item_t *item, void *opaque)
{
    pgs_worker_t *w = opaque;
    pgs_complete_work_free(w, (pgs_work_t *)item);
}

static size_t parts_outstanding(pgs_worker_t *w, const rd_kafka_topic_partition_list_t *parts)
{
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &parts->elems[i]);
        n += p ? p->outstanding : 0;
    }
    return n;
}

typedef struct {
    pgs_worker_t *w;
    const rd_kafka_topic_partition_list_t *parts;
} purge_ctx_t;

static int purge_pred_ctx(pgs_lane_item_t *item, void *opaque)
{
    purge_ctx_t *ctx = opaque;
    return purge_pred(item, (void *)ctx->parts);
}

static void purge_drop_ctx(pgs_lane_item_t *item, void *opaque)
{
    purge_ctx_t *ctx = opaque;
    purge_drop(item, ctx->w);
}

/* Finishes what is in flight for @p parts within the drain deadline, then
 * commits their completed prefix. */
static void drain_partitions(pgs_worker_t *w, rd_kafka_t *rk,
                             rd_kafka_topic_partition_list_t *parts, int lost)
{
    int64_t t0 = pgs_clock_now_us();
    purge_ctx_t ctx = {w, parts};
    int64_t deadline = t0 + pgs_config_int(w->cfg, "shutdown.drain_timeout_ms") * 1000;
    /* finish what was consumed, queued or in flight, within the deadline:
     * every command released unfinished is consumed again by the next owner
     * (harmless, but work). A lost assignment already has a new owner, and
     * with the database away nothing would finish: no waiting then. */
    while (!lost && parts_outstanding(w, parts) > 0 && pgs_clock_now_us() < deadline &&
           !(pgs_pool_breaker_open(w->streams[PGS_STREAM_COMMANDS].pool) &&
             pgs_pool_breaker_open(w->streams[PGS_STREAM_AUDIT].pool)))
        pgs_worker_step(w, 10);
    size_t purged = 0;
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        purged += pgs_lanes_purge(w->streams[s].lanes, purge_pred_ctx, purge_drop_ctx, &ctx);
    size_t left = parts_outstanding(w, parts);
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &parts->elems[i]);
        int64_t pos = p && p->offsets ? pgs_offsets_position(p->offsets) : -1;
        if (pos >= 0)
            rd_kafka_topic_partition_list_add(commit, p->stream->topic, p->partition)->offset = pos;
    }
    if (!lost && commit->cnt > 0) {
        /* a coordinator moving or busy is worth a few tries: every offset not
         * committed here is consumed again by the next owner (harmless, but
         * work) */
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int attempt = 0; attempt < 5; attempt++) {
            err = rd_kafka_commit(rk, commit, 0);
            if (err != RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE &&
                err != RD_KAFKA_RESP_ERR_NOT_COORDINATOR &&
                err != RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS &&
                err != RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT && err != RD_KAFKA_RESP_ERR__TIMED_OUT)
                break;
            pgs_worker_step(w, 200);
        }
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            pgs_warn("consume", "commit on revoke failed: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(commit);
    for (int i = 0; i < parts->cnt; i++) {
        pgs_partition_t *p = part_of(w, &parts->elems[i]);
        if (!p)
            continue;
        p->assigned = 0;
        p->dirty = 0;
        pgs_offsets_free(p->offsets);
        p->offsets = NULL;
    }
    pgs_info("consume",
             "%s %d partition(s): %zu queued command(s) released, %zu still in flight, "
             "drained in %lld ms",
             lost ? "lost" : "revoked", parts->cnt, purged, left,
             (long long)((pgs_clock_now_us() - t0) / 1000));
}

/* Each stream reads its partitions from a queue of its own: a backlog of
 * commands cannot hold audit events behind it in one shared consumer queue
 * (the consumption side of the bulkhead). */
static void route_partitions(pgs_worker_t *w, rd_kafka_t *rk,
                             const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        pgs_stream_t *st = pgs_consume_stream_of_topic(w, parts->elems[i].topic);
        if (!st || !st->queue)
            continue;
        rd_kafka_queue_t *q =
            rd_kafka_queue_get_partition(rk, parts->elems[i].topic, parts->elems[i].partition);
        if (!q)
            continue;
        rd_kafka_queue_forward(q, st->queue);
        rd_kafka_queue_destroy(q);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pgs_worker_t *w = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            pgs_partition_t *p = part_of(w, &parts->elems[i]);
            if (!p)
                continue;
            p->assigned = 1;
            p->paused = 0;
            p->generation++;
            p->dirty = 0;
            pgs_offsets_free(p->offsets);
            p->offsets = pgs_offsets_new();
        }
        pgs_info("consume", "assigned %d partition(s)", parts->cnt);
        rd_kafka_error_t *error = NULL;
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (error) {
            pgs_error("consume", "incremental assign failed: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        route_partitions(w, rk, parts);
        return;
    }
    drain_partitions(w, rk, parts, rd_kafka_assignment_lost(rk));
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
        if (error) {
            pgs_error("consume", "incremental unassign failed: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

int pgs_consume_start(pgs_worker_t *w, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {"auto.commit.interval.ms",
                                           "1000",
                                           "auto.offset.reset",
                                           "earliest",
                                           "partition.assignment.strategy",
                                           PGS_ASSIGNMENT_STRATEGY,
                                           "queued.max.messages.kbytes",
                                           "16384",
                                           NULL};
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(w->cfg, PGS_KAFKA_CONSUMER, defaults, NULL, errstr, errstr_size);
    if (!conf)
        return -1;
    /* what effectively-once rests on: offsets are stored by pgscribe only,
     * after the commit; a kafka.* key cannot change that */
    if (conf_set(conf, "group.id", pgs_config_str(w->cfg, "consumer.group"), errstr, errstr_size) ||
        conf_set(conf, "client.id", w->worker_id, errstr, errstr_size) ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        conf_set(conf, "enable.auto.commit", "true", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, w);
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!w->consumer)
        return -1;
    rd_kafka_poll_set_consumer(w->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
    for (int i = 0; i < PGS_STREAM__COUNT; i++)
        rd_kafka_topic_partition_list_add(topics, w->streams[i].topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        return -1;
    }
    /* librdkafka writes a byte to the pipe when the consumer queue goes from
     * empty to non-empty: the event loop sleeps in epoll, not in a poll timer */
    if (pipe2(w->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        return -1;
    }
    w->consumer_queue = rd_kafka_queue_get_consumer(w->consumer);
    rd_kafka_queue_io_event_enable(w->consumer_queue, w->wake_fds[1], "1", 1);
    for (int i = 0; i < PGS_STREAM__COUNT; i++) {
        w->streams[i].queue = rd_kafka_queue_new(w->consumer);
        rd_kafka_queue_io_event_enable(w->streams[i].queue, w->wake_fds[1], "1", 1);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fds[0], &ev);
    pgs_info("consume", "subscribed to %s and %s as group %s",
             w->streams[PGS_STREAM_COMMANDS].topic, w->streams[PGS_STREAM_AUDIT].topic,
             pgs_config_str(w->cfg, "consumer.group"));
    return 0;
}

int pgs_consume_poll(pgs_worker_t *w, int max)
{
    int n = 0;
    /* rebalance events (and any message of a partition not yet routed) */
    while (n < max) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->consumer, 0);
        if (!rkm)
            break;
        pgs_intake_message(w, rkm);
        n++;
    }
    /* then each stream from its own queue, within its own backlog bound */
    for (int i = 0; i < PGS_STREAM__COUNT; i++) {
        pgs_stream_t *st = &w->streams[i];
        for (int k = 0; st->queue && k < max && st->live < w->backlog_max; k++) {
            rd_kafka_message_t *rkm = rd_kafka_consume_queue(st->queue, 0);
            if (!rkm)
                break;
            pgs_intake_message(w, rkm);
            n++;
        }
    }
    return n;
}

void pgs_consume_store_offsets(pgs_worker_t *w)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            pgs_partition_t *p = st->parts[i];
            if (!p || !p->assigned || !p->dirty)
                continue;
            p->dirty = 0;
            int64_t pos = pgs_offsets_committable(p->offsets);
            if (pos < 0)
                continue;
            if (!list)
                list = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(list, st->topic, p->partition)->offset = pos;
        }
    }
    if (!list)
        return;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, list);
    if (err)
        pgs_debug("consume", "offsets store: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

/* Pauses a partition whose window of consumed-but-unfinished messages grew
 * past apply.partition_window_max (resumed at half of it), and every
 * partition while the breaker is open or the backlog is full. librdkafka
 * drops what it prefetched for a paused partition and resumes from the next
 * offset not yet handed to pgscribe, so nothing is skipped. Polling goes
 * on meanwhile, so the group membership and rebalances are served. */
void pgs_consume_update_pauses(pgs_worker_t *w)
{
    size_t window = (size_t)pgs_config_int(w->cfg, "apply.partition_window_max");
    rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        int all = pgs_pool_breaker_open(st->pool) || st->live >= w->backlog_max;
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            pgs_partition_t *p = st->parts[i];
            if (!p || !p->assigned)
                continue;
            size_t pending = pgs_offsets_pending(p->offsets);
            int want = all || pending > window || (p->paused && pending > window / 2);
            if (want == p->paused)
                continue;
            rd_kafka_topic_partition_list_t **list = want ? &pause : &resume;
            if (!*list)
                *list = rd_kafka_topic_partition_list_new(8);
            rd_kafka_topic_partition_list_add(*list, st->topic, p->partition);
            p->paused = want;
        }
    }
    if (pause) {
        rd_kafka_pause_partitions(w->consumer, pause);
        pgs_debug("consume", "paused %d partition(s)", pause->cnt);
        rd_kafka_topic_partition_list_destroy(pause);
    }
    if (resume) {
        rd_kafka_resume_partitions(w->consumer, resume);
        pgs_debug("consume", "resumed %d partition(s)", resume->cnt);
        rd_kafka_topic_partition_list_destroy(resume);
    }
}

void pgs_consume_close(pgs_worker_t *w)
{
    if (!w->consumer || w->consumer_closed)
        return;
    w->consumer_closed = 1;
    /* close revokes every partition through rebalance_cb, which drains and
     * commits; then the member leaves the group */
    rd_kafka_consumer_close(w->consumer);
}
