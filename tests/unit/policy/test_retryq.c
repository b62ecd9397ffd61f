/* Unit tests: the pending set of refused deliveries (dead letters) and its backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/retryq.h"

static void test_refused_waits_then_is_due_once(void **state)
{
    (void)state;
    pgs_retryq_t q;
    pgs_retryq_init(&q, 100000, 10000000, 7);
    int a = 1;
    assert_int_equal(pgs_retryq_fail(&q, &a, 0, 1000000), 1);
    assert_int_equal(pgs_retryq_count(&q), 1);
    /* first retry within [0, 100 ms] */
    assert_true(q.v[0].due_us >= 1000000 && q.v[0].due_us <= 1100000);
    int flags = -1;
    assert_null(pgs_retryq_take_due(&q, q.v[0].due_us - 1, &flags));
    assert_ptr_equal(pgs_retryq_take_due(&q, 1100000, &flags), &a);
    assert_int_equal(flags, 0);
    /* in flight: still pending, not taken twice */
    assert_int_equal(pgs_retryq_count(&q), 1);
    assert_null(pgs_retryq_take_due(&q, 99000000, &flags));
    assert_int_equal(pgs_retryq_done(&q, &a), 1);
    assert_int_equal(pgs_retryq_count(&q), 0);
    assert_int_equal(pgs_retryq_done(&q, &a), 0);
    pgs_retryq_free(&q);
}

static void test_failures_grow_the_ceiling_and_keep_flags(void **state)
{
    (void)state;
    pgs_retryq_t q;
    pgs_retryq_init(&q, 100000, 2000000, 11);
    int a = 1;
    int64_t max_seen = 0;
    for (int i = 1; i <= 12; i++) {
        assert_int_equal(pgs_retryq_fail(&q, &a, i == 3, 0), i);
        int64_t ceiling = 100000LL << (i - 1);
        if (ceiling > 2000000)
            ceiling = 2000000;
        assert_true(q.v[0].due_us >= 0 && q.v[0].due_us <= ceiling);
        if (q.v[0].due_us > max_seen)
            max_seen = q.v[0].due_us;
    }
    assert_true(max_seen > 100000); /* the ceiling grew past the first delay */
    int flags = 0;
    assert_ptr_equal(pgs_retryq_take_due(&q, 2000000, &flags), &a);
    assert_int_equal(flags, 1); /* "without value" once set stays set */
    assert_int_equal(pgs_retryq_count(&q), 1);
    pgs_retryq_free(&q);
}

static void test_many_items_each_done_once(void **state)
{
    (void)state;
    pgs_retryq_t q;
    pgs_retryq_init(&q, 1000, 1000, 3);
    int items[40];
    for (int i = 0; i < 40; i++)
        pgs_retryq_fail(&q, &items[i], 0, 0);
    assert_int_equal(pgs_retryq_count(&q), 40);
    int taken = 0;
    while (pgs_retryq_take_due(&q, 1000, NULL))
        taken++;
    assert_int_equal(taken, 40);
    for (int i = 39; i >= 0; i -= 2)
        assert_int_equal(pgs_retryq_done(&q, &items[i]), 1);
    assert_int_equal(pgs_retryq_count(&q), 20);
    for (int i = 0; i < 40; i += 2)
        assert_int_equal(pgs_retryq_done(&q, &items[i]), 1);
    assert_int_equal(pgs_retryq_count(&q), 0);
    pgs_retryq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_waits_then_is_due_once),
        cmocka_unit_test(test_failures_grow_the_ceiling_and_keep_flags),
        cmocka_unit_test(test_many_items_each_done_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
