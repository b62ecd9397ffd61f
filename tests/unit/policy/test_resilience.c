/* Unit tests: backoff with full jitter, circuit breaker, adaptive timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/resilience.h"

static void test_backoff_bounds_and_growth(void **state)
{
    (void)state;
    uint64_t rng = 42;
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t ceiling = 100000LL << (attempt - 1);
        if (ceiling > 2000000)
            ceiling = 2000000;
        int64_t max_seen = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t d = pgs_backoff_delay_us(attempt, 100000, 2000000, &rng);
            assert_true(d >= 0);
            assert_true(d <= ceiling);
            if (d > max_seen)
                max_seen = d;
        }
        /* full jitter spreads over the whole range */
        assert_true(max_seen > ceiling * 9 / 10);
    }
}

static void test_backoff_jitter_varies(void **state)
{
    (void)state;
    uint64_t rng = 7;
    int64_t a = pgs_backoff_delay_us(5, 1000, 1000000, &rng);
    int distinct = 0;
    for (int i = 0; i < 50; i++)
        distinct += pgs_backoff_delay_us(5, 1000, 1000000, &rng) != a;
    assert_true(distinct > 40);
}

/* The retry budget: time from the first failure bounds the retries; a count
 * bounds them only when set (0 = none). */
static void test_backoff_budget(void **state)
{
    (void)state;
    const int64_t ten_min = 600000000;
    /* many quick failures within the budget: not exhausted without a count */
    assert_false(pgs_backoff_exhausted(500, 0, 120000000, ten_min));
    assert_false(pgs_backoff_exhausted(1, 0, 0, ten_min));
    /* the budget spent: exhausted, however few the attempts */
    assert_true(pgs_backoff_exhausted(2, 0, ten_min, ten_min));
    assert_true(pgs_backoff_exhausted(2, 0, ten_min + 1, ten_min));
    /* a count, when set, is an upper bound within the budget */
    assert_true(pgs_backoff_exhausted(10, 10, 1000, ten_min));
    assert_false(pgs_backoff_exhausted(9, 10, 1000, ten_min));
    /* no budget (0) and no count: never exhausted (the config forbids it) */
    assert_false(pgs_backoff_exhausted(100000, 0, ten_min * 100, 0));
}

static void test_breaker_opens_at_threshold(void **state)
{
    (void)state;
    pgs_breaker_t b;
    pgs_breaker_init(&b, 3, 250000, 5000000);
    assert_int_equal(pgs_breaker_failure(&b, 0), 0);
    assert_int_equal(pgs_breaker_failure(&b, 1), 0);
    assert_true(pgs_breaker_allows_dispatch(&b));
    assert_int_equal(pgs_breaker_failure(&b, 2), 1);
    assert_int_equal(b.state, PGS_BREAKER_OPEN);
    assert_false(pgs_breaker_allows_dispatch(&b));
    assert_string_equal(pgs_breaker_state_name(b.state), "open");
    /* a success in between resets the count */
    pgs_breaker_t c;
    pgs_breaker_init(&c, 2, 1, 1);
    pgs_breaker_failure(&c, 0);
    pgs_breaker_success(&c, 0);
    assert_int_equal(pgs_breaker_failure(&c, 0), 0);
    assert_int_equal(c.state, PGS_BREAKER_CLOSED);
}

static void test_breaker_probe_backoff_and_close(void **state)
{
    (void)state;
    pgs_breaker_t b;
    pgs_breaker_init(&b, 1, 250000, 1000000);
    pgs_breaker_failure(&b, 1000000);
    assert_false(pgs_breaker_probe_due(&b, 1000000));
    assert_true(pgs_breaker_probe_due(&b, 1250000));
    pgs_breaker_probe_failed(&b, 1250000); /* next in 500 ms */
    assert_false(pgs_breaker_probe_due(&b, 1700000));
    assert_true(pgs_breaker_probe_due(&b, 1750000));
    pgs_breaker_probe_failed(&b, 1750000); /* 1 s, the cap */
    pgs_breaker_probe_failed(&b, 2750000); /* still 1 s */
    assert_true(pgs_breaker_probe_due(&b, 3750000));
    pgs_breaker_probe_ok(&b, 3750000);
    assert_int_equal(b.state, PGS_BREAKER_HALF_OPEN);
    assert_true(pgs_breaker_allows_dispatch(&b));
    assert_int_equal(pgs_breaker_success(&b, 4000000), 1);
    assert_int_equal(b.state, PGS_BREAKER_CLOSED);
    assert_int_equal(b.last_open_duration_us, 3000000);
    assert_int_equal(b.opened_count, 1);
}

static void test_breaker_half_open_failure_reopens(void **state)
{
    (void)state;
    pgs_breaker_t b;
    pgs_breaker_init(&b, 5, 100, 1000);
    for (int i = 0; i < 5; i++)
        pgs_breaker_failure(&b, 0);
    pgs_breaker_probe_ok(&b, 10);
    assert_int_equal(b.state, PGS_BREAKER_HALF_OPEN);
    pgs_breaker_failure(&b, 20);
    assert_int_equal(b.state, PGS_BREAKER_OPEN);
    assert_int_equal(b.opened_count, 1); /* the same outage */
}

static void test_latency_p99_and_timeout(void **state)
{
    (void)state;
    pgs_latency_t l;
    pgs_latency_init(&l);
    assert_int_equal(l.p99_us, -1);
    assert_int_equal(pgs_latency_timeout_adaptive(l.p99_us, 10, 2000000, 30000000), 30000000);
    for (int i = 1; i <= 128; i++)
        pgs_latency_record(&l, i * 1000); /* 1..128 ms */
    assert_true(l.p99_us >= 126000 && l.p99_us <= 128000);
    /* 10 × 127 ms = 1.27 s, below the 2 s floor */
    assert_int_equal(pgs_latency_timeout_adaptive(l.p99_us, 10, 2000000, 30000000), 2000000);
    assert_int_equal(pgs_latency_timeout_adaptive(l.p99_us, 100, 2000000, 30000000),
                     (int64_t)((double)l.p99_us * 100));
    assert_int_equal(pgs_latency_timeout_adaptive(l.p99_us, 1000, 2000000, 30000000), 30000000);
    assert_int_equal(pgs_latency_timeout_adaptive(l.p99_us, 10, 2000000, 0), 0);
    /* the window forgets: 128 fast samples bring the p99 down */
    for (int i = 0; i < 128; i++)
        pgs_latency_record(&l, 500);
    assert_int_equal(l.p99_us, 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds_and_growth),
        cmocka_unit_test(test_backoff_jitter_varies),
        cmocka_unit_test(test_backoff_budget),
        cmocka_unit_test(test_breaker_opens_at_threshold),
        cmocka_unit_test(test_breaker_probe_backoff_and_close),
        cmocka_unit_test(test_breaker_half_open_failure_reopens),
        cmocka_unit_test(test_latency_p99_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
