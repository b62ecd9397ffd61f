/* Unit tests for the latency histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "policy/hist.h"

static void assert_within(uint64_t got, uint64_t want, double rel)
{
    double diff = (double)got - (double)want;
    if (diff < 0)
        diff = -diff;
    if (diff > rel * (double)want)
        fail_msg("got %llu, want %llu within %.1f%%", (unsigned long long)got,
                 (unsigned long long)want, rel * 100);
}

static void test_uniform(void **state)
{
    (void)state;
    pgs_hist_t *h = malloc(sizeof(*h));

    pgs_hist_reset(h);
    for (uint64_t v = 1; v <= 100000; v++)
        pgs_hist_record(h, v);
    assert_int_equal(h->total, 100000);
    assert_int_equal(h->max_us, 100000);
    assert_within(pgs_hist_percentile(h, 50), 50000, 0.03);
    assert_within(pgs_hist_percentile(h, 99), 99000, 0.03);
    assert_within(pgs_hist_percentile(h, 99.9), 99900, 0.03);
    assert_within(pgs_hist_percentile(h, 10), 10000, 0.03);
    assert_int_equal(pgs_hist_percentile(h, 0), 1);
    assert_int_equal(pgs_hist_percentile(h, 100), 100000);
    assert_int_equal(pgs_hist_percentile(h, 250), 100000);
    free(h);
}

static void test_single_value(void **state)
{
    (void)state;
    pgs_hist_t h;

    pgs_hist_reset(&h);
    pgs_hist_record(&h, 12345);
    assert_within(pgs_hist_percentile(&h, 50), 12345, 0.03);
    assert_within(pgs_hist_percentile(&h, 99), 12345, 0.03);
    assert_true(pgs_hist_percentile(&h, 99) <= 12345);

    pgs_hist_reset(&h);
    pgs_hist_record(&h, 0);
    assert_int_equal(pgs_hist_percentile(&h, 50), 0);
    pgs_hist_reset(&h);
    pgs_hist_record(&h, 7);
    assert_int_equal(pgs_hist_percentile(&h, 50), 7); /* exact below 32 us */
}

static void test_empty(void **state)
{
    (void)state;
    pgs_hist_t h;

    pgs_hist_reset(&h);
    assert_int_equal(pgs_hist_percentile(&h, 0), 0);
    assert_int_equal(pgs_hist_percentile(&h, 50), 0);
    assert_int_equal(pgs_hist_percentile(&h, 100), 0);
}

/* Every value from 1 us to past an hour lands in a bucket whose reported
 * value is within 3% (the max is set far above so it does not clamp). */
static void test_relative_error(void **state)
{
    (void)state;
    pgs_hist_t h;

    for (uint64_t v = 1; v < (uint64_t)1 << 34; v += 1 + v / 97) {
        pgs_hist_reset(&h);
        pgs_hist_record(&h, v);
        pgs_hist_record(&h, (uint64_t)1 << 40);
        assert_within(pgs_hist_percentile(&h, 50), v, 0.03);
    }
}

static void test_merge(void **state)
{
    (void)state;
    pgs_hist_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *both = malloc(sizeof(*both));
    uint64_t x = 12345;

    pgs_hist_reset(a);
    pgs_hist_reset(b);
    pgs_hist_reset(both);
    for (int i = 0; i < 5000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t v = (x >> 33) % 2000000;
        pgs_hist_record(i % 3 ? a : b, v);
        pgs_hist_record(both, v);
    }
    pgs_hist_merge(a, b);
    assert_int_equal(a->total, both->total);
    assert_int_equal(a->max_us, both->max_us);
    assert_memory_equal(a->counts, both->counts, sizeof(a->counts));
    for (double p = 0; p <= 100; p += 12.5)
        assert_int_equal(pgs_hist_percentile(a, p), pgs_hist_percentile(both, p));
    free(a);
    free(b);
    free(both);
}

static void test_large_values(void **state)
{
    (void)state;
    pgs_hist_t h;

    pgs_hist_reset(&h);
    pgs_hist_record(&h, 10);
    pgs_hist_record(&h, UINT64_MAX);
    assert_int_equal(h.counts[PGS_HIST_BUCKETS - 1], 1);
    assert_int_equal(pgs_hist_percentile(&h, 50), 10);
    assert_int_equal(pgs_hist_percentile(&h, 100), UINT64_MAX);

    /* Beyond the top bucket, the answer is the recorded maximum. */
    pgs_hist_reset(&h);
    pgs_hist_record(&h, (uint64_t)1 << 50);
    pgs_hist_record(&h, ((uint64_t)1 << 50) + 3);
    assert_int_equal(h.counts[PGS_HIST_BUCKETS - 1], 2);
    assert_int_equal(pgs_hist_percentile(&h, 50), ((uint64_t)1 << 50) + 3);

    /* An hour is well inside the range and stays accurate. */
    pgs_hist_reset(&h);
    pgs_hist_record(&h, 3600ULL * 1000000);
    pgs_hist_record(&h, 3600ULL * 1000000 * 2);
    assert_true(h.counts[PGS_HIST_BUCKETS - 1] == 0);
    assert_within(pgs_hist_percentile(&h, 50), 3600ULL * 1000000, 0.03);
}

/* Cumulative counts for Prometheus buckets, and the sum. */
static void test_count_le_and_sum(void **state)
{
    (void)state;
    pgs_hist_t *h = calloc(1, sizeof(*h));
    for (uint64_t v = 1; v <= 10000; v++)
        pgs_hist_record(h, v * 100); /* 100 us .. 1 s */
    assert_int_equal(h->sum_us, 100ull * 10000 * 10001 / 2);
    assert_int_equal(pgs_hist_count_le(h, 0), 0);
    assert_int_equal(pgs_hist_count_le(h, 2000000), 10000); /* above the max: all */
    static const uint64_t bounds[] = {1000, 5000, 25000, 100000, 500000};
    uint64_t prev = 0;
    for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
        uint64_t n = pgs_hist_count_le(h, bounds[i]);
        uint64_t exact = bounds[i] / 100;
        assert_true(n >= exact);                  /* never fewer than really at most */
        assert_true(n <= exact + exact / 32 + 1); /* within a bucket's width */
        assert_true(n >= prev);                   /* cumulative */
        prev = n;
    }
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_large_values),
        cmocka_unit_test(test_count_le_and_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
