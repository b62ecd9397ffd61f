/* Consume: the Kafka consumer of the commands topic — offsets stored by
 * pgscribe only (never automatically) and only as the completed prefix,
 * partitions paused under back-pressure, and revoked partitions handed to
 * the main loop (revoke.c), which drains and commits them before they are
 * given up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/config.h"
#include "common/kafkaconf.h"
#include "common/log.h"
#include "run/consume.h"
#include "run/fair.h"
#include "run/intake.h"
#include "run/lag.h"
#include "run/pool.h"
#include "run/reach.h"
#include "run/revoke.h"
#include "run/rewind.h"
#include "run/schemawait.h"
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

/** @locality librdkafka callback (rebalance, main thread) */
static pgs_partition_t *part_of(pgs_worker_t *w, const rd_kafka_topic_partition_t *tp)
{
    pgs_stream_t *st = pgs_consume_stream_of_topic(w, tp->topic);
    return st ? pgs_consume_partition_get(st, tp->partition) : NULL;
}

/* @locality main thread */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
    if (rd_kafka_conf_set(conf, name, value, errstr, errstr_size) != RD_KAFKA_CONF_OK)
        return -1;
    return 0;
}

/* Each stream reads its partitions from a queue of its own: a backlog of
 * commands cannot hold audit events behind it in one shared consumer queue
 * (the consumption side of the bulkhead).
 * @locality librdkafka callback (rebalance, main thread) */
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

/* The database is another one than that of the last rewind check: nothing
 * more is applied (no pool connection is used, no floor or checkpoint is
 * recorded) and the worker leaves the group and starts again in-process;
 * its new assignment rewinds each partition to what the database holds.
 * @locality main thread (also inside the rebalance callback) */
static void restart_for_identity(pgs_worker_t *w, const char *now)
{
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        if (w->streams[s].pool)
            pgs_pool_hold_identity(w->streams[s].pool);
    if (w->restart_to_rewind)
        return;
    char was[48] = "unknown";
    if (w->have_db_identity)
        pgs_rewind_identity_format(&w->db_identity, was, sizeof(was));
    w->have_db_identity = 0;
    pgs_warn("consume",
             "database identity changed (%s -> %s: a promotion or restore): restarting "
             "in-process without applying anything more; the new assignment checks each "
             "partition and rewinds what the database forgot",
             was, now);
    w->restart_to_rewind = 1;
    w->stop = 1;
}

/* Rewind after a restore (rewind.c): before the new partitions are
 * consumed, each one's committed offset is compared with the highest offset
 * the database records; a database that ends before it forgot commands, and
 * the partition starts just past its record instead. Only ever backwards: a
 * database that did not go back records the last committed command. When
 * the database or the group coordinator cannot answer, the committed
 * offsets are kept and a warn line says the check was skipped.
 * @locality librdkafka callback (rebalance, main thread): blocking, once
 *           per assignment */
static void rewind_assigned(pgs_worker_t *w, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    if (parts->cnt == 0)
        return;
    char errstr[512] = "";
    PGconn *pg = pgs_rewind_connect(pgs_config_str(w->cfg, "pg.conninfo"), errstr, sizeof(errstr));
    pgs_rewind_row_t *rows = calloc((size_t)parts->cnt, sizeof(*rows));
    pgs_rewind_identity_t id;
    if (!pg || !rows || pgs_rewind_identity(pg, &id) != 0 ||
        pgs_rewind_plan(rk, pg, parts, 10000, rows, errstr, sizeof(errstr)) != 0) {
        pgs_warn("consume", "rewind check skipped, committed offsets kept: %s",
                 errstr[0] ? errstr : "database identity unreadable (migrations applied?)");
        free(rows);
        PQfinish(pg);
        return;
    }
    char idtext[48];
    pgs_rewind_identity_format(&id, idtext, sizeof(idtext));
    if (w->have_db_identity && !pgs_rewind_identity_same(&id, &w->db_identity)) {
        /* the database changed while this worker held works of the other
         * one (in flight, held for a retry, or partitions it keeps): none of
         * them may be applied here before a rewind, so it starts again */
        restart_for_identity(w, idtext);
    } else if (!w->restart_to_rewind) {
        w->db_identity = id;
        w->have_db_identity = 1;
        for (int s = 0; s < PGS_STREAM__COUNT; s++)
            if (w->streams[s].pool)
                pgs_pool_set_identity(w->streams[s].pool, idtext);
    }
    int rewound = 0;
    for (int i = 0; i < parts->cnt; i++) {
        if (rows[i].target < 0)
            continue;
        parts->elems[i].offset = rows[i].target;
        rewound++;
        pgs_warn("consume",
                 "rewound topic=%s partition=%d from=%lld to=%lld: the database records offsets "
                 "up to %lld only (restored or failed over?); system_identifier=%s timeline=%d",
                 rows[i].topic, (int)rows[i].partition, (long long)rows[i].committed,
                 (long long)rows[i].target, (long long)rows[i].recorded, id.system_identifier,
                 id.timeline);
    }
    pgs_info("consume",
             "rewind check: %d of %d partition(s) rewound, system_identifier=%s timeline=%d",
             rewound, parts->cnt, id.system_identifier, id.timeline);
    free(rows);
    PQfinish(pg);
}

void pgs_consume_check_identity(pgs_worker_t *w)
{
    /* every new connection of the pools reads the database's identity before
     * its first transaction; one that found another database took no work
     * (pool.h) and names it here */
    for (int s = 0; s < PGS_STREAM__COUNT && !w->restart_to_rewind; s++) {
        const char *other = pgs_pool_identity_changed(w->streams[s].pool);
        if (other)
            restart_for_identity(w, other);
    }
}

/**
 * @brief The rebalance callback: records an assignment (assign and route
 *        synchronously, as librdkafka requires), or marks a revocation for
 *        the main loop to drain (revoke.c) and returns at once. librdkafka
 *        holds the group in its wait for the unassign call meanwhile: the
 *        rebalance goes on once pgs_revoke_serve has committed and called
 *        rd_kafka_assign(NULL) (or rd_kafka_incremental_unassign).
 * @locality librdkafka callback (main thread, inside rd_kafka_consumer_poll,
 *           or inside rd_kafka_queue_poll_callback while the consumer closes)
 */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pgs_worker_t *w = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* the group waits for an unassignment before it assigns again, so a
         * revocation still pending here was never completed: complete it */
        if (pgs_revoke_pending(w)) {
            pgs_warn("consume", "assignment while a revocation was pending; releasing it now");
            pgs_revoke_finish_now(w);
        }
        for (int i = 0; i < parts->cnt; i++) {
            pgs_partition_t *p = part_of(w, &parts->elems[i]);
            if (!p)
                continue;
            p->assigned = 1;
            p->revoking = 0;
            p->paused = 0;
            p->generation++;
            p->dirty = 0;
            p->committed = PGS_LAG_COMMITTED_UNKNOWN;
            pgs_offsets_free(p->offsets);
            p->offsets = pgs_offsets_new();
        }
        pgs_lag_request(w, rk, parts);
        rewind_assigned(w, rk, parts);
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
        /* librdkafka keeps a partition's pause across a revocation and a new
         * assignment (librdkafka #1849): one paused under back-pressure
         * before a rebalance would stay paused while p->paused above says it
         * is not, and would never be fetched again */
        rd_kafka_resume_partitions(rk, parts);
        route_partitions(w, rk, parts);
        pgs_reach_contact(w);
        return;
    }
    /* a revocation, or a rebalance error (handled as a revocation of the
     * whole assignment): the main loop drains, commits and unassigns */
    pgs_revoke_begin(w, parts, rd_kafka_assignment_lost(rk), cooperative);
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
    pgs_reach_conf(w, conf);
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
            if (!rkm->err)
                pgs_reach_contact(w); /* fetched: Kafka answers */
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
            if (!p || !p->assigned || p->revoking)
                continue;
            size_t pending = pgs_offsets_pending(p->offsets);
            int want =
                all || pending > window || (p->paused && pending > window / 2) ||
                pgs_schemawait_holding(p) ||
                pgs_fair_partition_throttled(p->over_limit, p->outstanding, window, p->paused);
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

int pgs_consume_close_start(pgs_worker_t *w)
{
    if (!w->consumer || w->consumer_closed)
        return -1;
    w->consumer_closed = 1;
    /* the close revokes every partition through rebalance_cb on this queue;
     * the caller's event loop serves it and drains the revocation, then the
     * member leaves the group */
    w->close_queue = rd_kafka_queue_new(w->consumer);
    rd_kafka_queue_io_event_enable(w->close_queue, w->wake_fds[1], "1", 1);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(w->consumer, w->close_queue);
    if (error) {
        pgs_error("consume", "consumer close failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_queue_destroy(w->close_queue);
        w->close_queue = NULL;
        return -1;
    }
    return 0;
}

int pgs_consume_close_serve(pgs_worker_t *w)
{
    if (!w->close_queue)
        return 1;
    rd_kafka_queue_poll_callback(w->close_queue, 0);
    if (!rd_kafka_consumer_closed(w->consumer))
        return 0;
    rd_kafka_queue_destroy(w->close_queue);
    w->close_queue = NULL;
    return 1;
}
