/* Unit tests: the sampling decision (trace.sampling, trace.ratio by trace
 * id) and a traced work's span lifecycle: process, transaction and send
 * spans, the outcome, and the bounded export buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "run/trace.h"

static pgs_traceparent_t tp_with(uint8_t flags, uint8_t last)
{
    pgs_traceparent_t tp;
    memset(&tp, 0, sizeof(tp));
    memset(tp.trace_id, 0x11, sizeof(tp.trace_id));
    tp.trace_id[8] = last; /* the ratio reads bytes 8..15 */
    memset(tp.span_id, 0x22, sizeof(tp.span_id));
    tp.flags = flags;
    return tp;
}

static void test_decide(void **state)
{
    (void)state;
    pgs_traceparent_t on = tp_with(1, 0x10), off = tp_with(0, 0x10);
    assert_true(pgs_trace_decide(PGS_TRACE_PARENT, 1.0, &on));
    assert_false(pgs_trace_decide(PGS_TRACE_PARENT, 1.0, &off));
    assert_true(pgs_trace_decide(PGS_TRACE_ALWAYS, 1.0, &off));
    assert_false(pgs_trace_decide(PGS_TRACE_NEVER, 1.0, &on));
    assert_false(pgs_trace_decide(PGS_TRACE_PARENT, 0.0, &on));
    /* 0x10.. is below half of 2^64, 0xf0.. above */
    pgs_traceparent_t low = tp_with(1, 0x10), high = tp_with(1, 0xf0);
    assert_true(pgs_trace_decide(PGS_TRACE_PARENT, 0.5, &low));
    assert_false(pgs_trace_decide(PGS_TRACE_PARENT, 0.5, &high));
    assert_false(pgs_trace_decide(PGS_TRACE_ALWAYS, 0.5, &high));
}

typedef struct {
    pgs_config_t *cfg;
    pgs_tracer_t *t;
    pgs_stream_t stream;
    pgs_partition_t part;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char errstr[256];
    fx->cfg = pgs_config_new();
    assert_int_equal(
        pgs_config_set(fx->cfg, "trace.max_buffered_spans", "16", errstr, sizeof(errstr)), 0);
    fx->t = pgs_trace_new(fx->cfg, "w-1", NULL, errstr, sizeof(errstr));
    assert_non_null(fx->t);
    fx->stream.kind = PGS_STREAM_COMMANDS;
    fx->stream.topic = "clinic.commands";
    fx->stream.dlq_topic = "clinic.commands.dlq";
    fx->part.stream = &fx->stream;
    fx->part.partition = 3;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    pgs_trace_free(fx->t);
    pgs_config_free(fx->cfg);
    free(fx);
    return 0;
}

static pgs_work_t *work_new(fx_t *fx, uint8_t flags, int traced)
{
    pgs_work_t *wk = calloc(1, sizeof(*wk));
    wk->part = &fx->part;
    wk->offset = 42;
    wk->traced = traced;
    wk->trace = tp_with(flags, 0x10);
    return wk;
}

static void test_lifecycle(void **state)
{
    fx_t *fx = *state;
    pgs_work_t *sampled = work_new(fx, 1, 1), *unsampled = work_new(fx, 0, 1),
               *none = work_new(fx, 1, 0);
    pgs_trace_begin(fx->t, sampled, 1000);
    pgs_trace_begin(fx->t, unsampled, 1000);
    pgs_trace_begin(fx->t, none, 1000);
    assert_non_null(sampled->tspan);
    assert_null(unsampled->tspan);
    assert_null(none->tspan);

    pgs_work_t *batch[] = {sampled, unsampled, none};
    pgs_trace_transaction(fx->t, batch, 3, 500, "23514", "database rejected INSERT");
    assert_int_equal(pgs_trace_buffered(fx->t), 1); /* the sampled one's only */
    pgs_trace_retry(fx->t, sampled, "40001", 100000);
    sampled->fresh = 1;
    pgs_trace_transaction(fx->t, batch, 3, 500, NULL, NULL);
    assert_int_equal(pgs_trace_buffered(fx->t), 2);
    sampled->state = PGS_WORK_DEAD_LETTERING;
    snprintf(sampled->errcode, sizeof(sampled->errcode), "23514");
    pgs_trace_dead_letter(fx->t, sampled);
    pgs_trace_dead_letter(fx->t, sampled); /* a refused one produced again: one span */
    pgs_trace_end(fx->t, sampled);
    assert_null(sampled->tspan);
    assert_int_equal(pgs_trace_buffered(fx->t), 4); /* + send + process */
    pgs_trace_end(fx->t, unsampled);
    assert_int_equal(pgs_trace_buffered(fx->t), 4);
    free(sampled);
    free(unsampled);
    free(none);
}

static void test_buffer_bound(void **state)
{
    fx_t *fx = *state;
    for (int i = 0; i < 20; i++) {
        pgs_work_t *wk = work_new(fx, 1, 1);
        pgs_trace_begin(fx->t, wk, 1000);
        pgs_trace_end(fx->t, wk);
        free(wk);
    }
    assert_int_equal(pgs_trace_buffered(fx->t), 16);
    assert_int_equal(pgs_trace_dropped(fx->t), 4);

    /* a released work's spans are freed, not exported */
    pgs_work_t *wk = work_new(fx, 1, 1);
    pgs_trace_begin(fx->t, wk, 1000);
    pgs_trace_dead_letter(fx->t, wk);
    pgs_trace_discard(wk);
    assert_null(wk->tspan);
    assert_int_equal(pgs_trace_dropped(fx->t), 4);
    free(wk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
