/* Unit tests for the revocation sequence against librdkafka's mock cluster
 * (rdkafka_mock, not a real broker): the rebalance callback only marks the
 * revoked partitions and returns with them still assigned; the main loop's
 * pgs_revoke_serve completes the unassignment once their works are done or
 * the drain deadline has passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "run/consume.h"
#include "run/revoke.h"
#include "run/worker.h"

static pgs_worker_t *worker_new(const char *group, const char *drain_ms)
{
    pgs_worker_t *w = calloc(1, sizeof(*w));
    char err[512];
    char commands[64], audit[64];
    snprintf(commands, sizeof(commands), "%s.commands", group);
    snprintf(audit, sizeof(audit), "%s.audit", group);
    const char *const kv[] = {"kafka.test.mock.num.brokers",
                              "1",
                              "kafka.consumer.session.timeout.ms",
                              "6000",
                              "kafka.consumer.heartbeat.interval.ms",
                              "200",
                              "consumer.group",
                              group,
                              "topic.commands",
                              commands,
                              "topic.audit",
                              audit,
                              "shutdown.drain_timeout_ms",
                              drain_ms,
                              NULL};
    w->cfg = pgs_config_new();
    for (size_t i = 0; kv[i]; i += 2)
        assert_int_equal(pgs_config_set(w->cfg, kv[i], kv[i + 1], err, sizeof(err)), 0);
    snprintf(w->worker_id, sizeof(w->worker_id), "revoke-test");
    const char *topics[PGS_STREAM__COUNT] = {pgs_config_str(w->cfg, "topic.commands"),
                                             pgs_config_str(w->cfg, "topic.audit")};
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        w->streams[s].kind = (pgs_stream_kind_t)s;
        w->streams[s].topic = topics[s];
        w->streams[s].lanes = pgs_lanes_new();
    }
    w->backlog_max = 1000;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_int_equal(pgs_consume_start(w, err, sizeof(err)), 0);
    return w;
}

static void worker_free(pgs_worker_t *w)
{
    rd_kafka_queue_destroy(w->consumer_queue);
    if (w->lag_queue) /* a queue still held would keep rd_kafka_destroy waiting */
        rd_kafka_queue_destroy(w->lag_queue);
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        rd_kafka_queue_destroy(w->streams[s].queue);
        for (int32_t i = 0; i < w->streams[s].parts_cnt; i++) {
            if (w->streams[s].parts[i]) {
                pgs_offsets_free(w->streams[s].parts[i]->offsets);
                free(w->streams[s].parts[i]);
            }
        }
        free(w->streams[s].parts);
        pgs_lanes_free(w->streams[s].lanes);
    }
    if (w->revoke.parts)
        rd_kafka_topic_partition_list_destroy(w->revoke.parts);
    rd_kafka_destroy(w->consumer);
    close(w->wake_fds[0]);
    close(w->wake_fds[1]);
    close(w->epfd);
    pgs_config_free(w->cfg);
    free(w);
}

static int assignment_size(pgs_worker_t *w)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    assert_int_equal(rd_kafka_assignment(w->consumer, &list), RD_KAFKA_RESP_ERR_NO_ERROR);
    int n = list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return n;
}

static pgs_partition_t *first_assigned(pgs_worker_t *w)
{
    pgs_stream_t *st = &w->streams[PGS_STREAM_COMMANDS];
    for (int32_t i = 0; i < st->parts_cnt; i++) {
        if (st->parts[i] && st->parts[i]->assigned)
            return st->parts[i];
    }
    return NULL;
}

/* Polls (serving the rebalance callback) until the worker holds a partition. */
static pgs_partition_t *wait_assigned(pgs_worker_t *w)
{
    int64_t deadline = pgs_clock_now_us() + 30 * 1000000LL;
    while (pgs_clock_now_us() < deadline) {
        pgs_consume_poll(w, 100);
        pgs_partition_t *p = first_assigned(w);
        if (p && assignment_size(w) > 0)
            return p;
        usleep(20000);
    }
    fail_msg("no assignment from the mock cluster within 30 s");
    return NULL;
}

/* Polls until the rebalance callback has marked a revocation. */
static void wait_revoke_marked(pgs_worker_t *w)
{
    int64_t deadline = pgs_clock_now_us() + 10 * 1000000LL;
    while (!pgs_revoke_pending(w) && pgs_clock_now_us() < deadline) {
        pgs_consume_poll(w, 100);
        usleep(10000);
    }
    assert_true(pgs_revoke_pending(w));
}

static void test_callback_marks_and_main_loop_unassigns(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new("revoke-marks", "30000");
    pgs_partition_t *p = wait_assigned(w);
    int held = assignment_size(w);
    p->outstanding = 1; /* a work of the partition still in flight */
    assert_int_equal(rd_kafka_unsubscribe(w->consumer), RD_KAFKA_RESP_ERR_NO_ERROR);
    wait_revoke_marked(w);
    /* the callback returned without draining or unassigning */
    assert_true(p->revoking);
    assert_true(p->assigned);
    assert_int_equal(assignment_size(w), held);
    /* while the work is in flight (and the deadline far), the main loop waits */
    for (int i = 0; i < 5; i++) {
        pgs_revoke_serve(w);
        pgs_consume_poll(w, 100);
    }
    assert_true(pgs_revoke_pending(w));
    assert_int_equal(assignment_size(w), held);
    /* messages of a revoking partition are not taken meanwhile */
    assert_int_equal(pgs_offsets_pending(p->offsets), 0);
    /* the work completes: the next turn gives the partitions up */
    p->outstanding = 0;
    pgs_revoke_serve(w);
    assert_false(pgs_revoke_pending(w));
    assert_false(p->assigned);
    assert_false(p->revoking);
    assert_int_equal(assignment_size(w), 0);
    worker_free(w);
}

static void test_drain_deadline_releases(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new("revoke-deadline", "100");
    pgs_partition_t *p = wait_assigned(w);
    p->outstanding = 1; /* never completes */
    assert_int_equal(rd_kafka_unsubscribe(w->consumer), RD_KAFKA_RESP_ERR_NO_ERROR);
    wait_revoke_marked(w);
    int64_t t0 = pgs_clock_now_us();
    while (pgs_revoke_pending(w) && pgs_clock_now_us() - t0 < 5 * 1000000LL) {
        pgs_revoke_serve(w);
        usleep(10000);
    }
    assert_false(pgs_revoke_pending(w));
    assert_false(p->assigned);
    assert_int_equal(assignment_size(w), 0);
    p->outstanding = 0;
    worker_free(w);
}

int main(void)
{
    pgs_log_set_level(PGS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callback_marks_and_main_loop_unassigns),
        cmocka_unit_test(test_drain_deadline_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
