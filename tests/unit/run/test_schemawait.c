/* Unit tests for the schema wait's bookkeeping (run/schemawait.c): held
 * messages kept per partition in consumption order, counted, pausing their
 * partition, and given up on revocation with their offsets left undone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/clock.h"
#include "run/offsets.h"
#include "run/schemawait.h"
#include "run/worker.h"

static pgs_worker_t *worker_new(void)
{
    pgs_worker_t *w = calloc(1, sizeof(*w));
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        st->kind = (pgs_stream_kind_t)s;
        st->parts_cnt = 2;
        st->parts = calloc(2, sizeof(*st->parts));
        for (int32_t i = 0; i < 2; i++) {
            st->parts[i] = calloc(1, sizeof(pgs_partition_t));
            st->parts[i]->stream = st;
            st->parts[i]->partition = i;
            st->parts[i]->assigned = 1;
            st->parts[i]->offsets = pgs_offsets_new();
        }
    }
    return w;
}

static void worker_free(pgs_worker_t *w)
{
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        for (int32_t i = 0; i < 2; i++) {
            pgs_offsets_free(w->streams[s].parts[i]->offsets);
            free(w->streams[s].parts[i]);
        }
        free(w->streams[s].parts);
    }
    free(w);
}

/* A consumed message as intake makes it: tracked, outstanding, live. */
static pgs_work_t *consumed(pgs_worker_t *w, pgs_partition_t *p, int64_t offset)
{
    pgs_work_t *work = calloc(1, sizeof(*work));
    work->part = p;
    work->offset = offset;
    assert_int_equal(pgs_offsets_track(p->offsets, offset), 0);
    p->outstanding++;
    p->stream->live++;
    w->works_live++;
    return work;
}

static int revoking(const pgs_work_t *work)
{
    return work->part->revoking;
}

static void test_hold_order_and_counts(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    pgs_partition_t *p0 = w->streams[PGS_STREAM_COMMANDS].parts[0];
    pgs_partition_t *p1 = w->streams[PGS_STREAM_COMMANDS].parts[1];
    pgs_work_t *a = consumed(w, p0, 10), *b = consumed(w, p0, 11), *c = consumed(w, p1, 5);
    assert_false(pgs_schemawait_holding(p0));
    pgs_schemawait_hold(w, a, "schema registry: Couldn't connect to server");
    pgs_schemawait_hold(w, b, NULL);
    pgs_schemawait_hold(w, c, NULL);
    assert_true(pgs_schemawait_holding(p0));
    assert_true(pgs_schemawait_holding(p1));
    assert_true(w->schema_wait_logged);
    assert_int_equal(w->schema_held, 3);
    assert_int_equal(pgs_schemawait_held(w, NULL), 3);
    /* consumption order within the partition */
    assert_ptr_equal(p0->held_head, a);
    assert_ptr_equal(a->held_next, b);
    assert_ptr_equal(p0->held_tail, b);
    assert_int_equal(p0->held_cnt, 2);
    /* not due yet: a tick changes nothing (and intake is not entered) */
    assert_true(w->schema_retry_at_us > 0);
    w->schema_retry_at_us = pgs_clock_now_us() + 60 * 1000000LL;
    pgs_schemawait_tick(w);
    assert_int_equal(w->schema_held, 3);

    /* partition 0 revoked: its two are given up, partition 1's one stays */
    p0->revoking = 1;
    assert_int_equal(pgs_schemawait_held(w, revoking), 2);
    assert_int_equal(pgs_schemawait_release(w, revoking), 2);
    assert_false(pgs_schemawait_holding(p0));
    assert_int_equal(p0->outstanding, 0);
    assert_int_equal(w->schema_held, 1);
    assert_int_equal(w->works_live, 1);
    /* nothing of theirs was marked done: the next owner reads them again */
    assert_int_equal(pgs_offsets_incomplete(p0->offsets), 2);
    assert_int_equal(pgs_offsets_committable(p0->offsets), -1);

    assert_int_equal(pgs_schemawait_release(w, NULL), 1);
    assert_int_equal(w->schema_held, 0);
    assert_int_equal(w->works_live, 0);
    worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_order_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
