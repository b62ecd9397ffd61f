/* Unit tests for the adaptive in-flight limit, against simulated databases:
 * each gives a commit rate for a number of concurrent transactions, with
 * seeded noise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "policy/concurrency.h"

#define WINDOW 1000000 /* 1 s in microseconds */

typedef double (*rate_fn)(int limit);

/* Measured on 2 cores (bench_e2e.sh): 4 in flight is best, 50 is half. */
static double two_core_db(int limit)
{
    static const struct {
        int n;
        double rate;
    } pts[] = {{1, 9000}, {2, 15000}, {4, 19000}, {8, 17700}, {16, 15000}, {50, 10400}};
    size_t cnt = sizeof(pts) / sizeof(pts[0]);
    if (limit <= pts[0].n)
        return pts[0].rate;
    for (size_t i = 1; i < cnt; i++) {
        if (limit <= pts[i].n) {
            double f = (double)(limit - pts[i - 1].n) / (pts[i].n - pts[i - 1].n);
            return pts[i - 1].rate + f * (pts[i].rate - pts[i - 1].rate);
        }
    }
    return pts[cnt - 1].rate;
}

/* A database far away: every transaction waits on the network, so the rate
 * grows with concurrency and flattens only near 64. */
static double remote_db(int limit)
{
    return 400.0 * limit / (1.0 + limit / 64.0);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* uniform in [-1, 1) */
static double noise(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ULL << 52) - 1.0;
}

/* Runs @p windows saturated windows; @returns the mean limit over the last
 * @p tail of them, and their mean true rate in @p mean_rate when not NULL. */
static double simulate_rate(pgs_concurrency_t *c, rate_fn f, int windows, int tail, double jitter,
                            int64_t *now, double *mean_rate)
{
    double sum = 0, rates = 0;
    for (int w = 0; w < windows; w++) {
        double rate = f(c->limit) * (1.0 + jitter * noise());
        pgs_concurrency_polled(c, 1);
        /* transactions of 100 commands, each limit of them in flight for
         * as long as Little's law says: limit / (transactions per second) */
        int64_t took_us = (int64_t)(c->limit * 100.0 / rate * 1e6);
        for (int left = (int)rate; left > 0; left -= 100)
            pgs_concurrency_done(c, left < 100 ? left : 100, took_us);
        *now += WINDOW;
        pgs_concurrency_tick(c, *now);
        assert_true(c->limit >= c->min && c->limit <= c->max);
        if (w >= windows - tail) {
            sum += c->limit;
            rates += f(c->limit);
        }
    }
    if (mean_rate)
        *mean_rate = rates / tail;
    return sum / tail;
}

static double simulate(pgs_concurrency_t *c, rate_fn f, int windows, int tail, double jitter,
                       int64_t *now)
{
    return simulate_rate(c, f, windows, tail, jitter, now, NULL);
}

static void test_few_cores_settles_low(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, now);
    assert_int_equal(c.limit, 8);
    double rate = 0;
    double mean = simulate_rate(&c, two_core_db, 60, 30, 0.02, &now, &rate);
    /* the best rate is at 4, the best score (rate over latency) between 2
     * and 4: 4 commits 27% more than 2 at twice the latency. It settles
     * there, and commits at least 80% of the best rate, where 50 in flight
     * would give 55% */
    assert_true(mean >= 2.0 && mean <= 5.0);
    assert_true(rate >= 0.8 * two_core_db(4));
}

static void test_remote_db_climbs_to_max(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, now);
    double mean = simulate(&c, remote_db, 60, 20, 0.02, &now);
    assert_true(mean >= 40);
}

static void test_from_max_comes_down(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 50, 50, WINDOW, now);
    double mean = simulate(&c, two_core_db, 40, 10, 0.02, &now);
    assert_true(mean <= 8);
}

static void test_unsaturated_windows_leave_it_alone(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, now);
    for (int w = 0; w < 20; w++) {
        /* work was there, but the limit never held any back */
        for (int k = 0; k < 10; k++)
            pgs_concurrency_polled(&c, k == 0);
        pgs_concurrency_done(&c, 1000 + 500 * w, 20000);
        now += WINDOW;
        assert_int_equal(pgs_concurrency_tick(&c, now), 0);
    }
    assert_int_equal(c.limit, 8);
    assert_int_equal(c.changes, 0);
}

static void test_window_not_due(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, 0);
    pgs_concurrency_polled(&c, 1);
    for (int t = 0; t < 50; t++)
        pgs_concurrency_done(&c, 100, 20000);
    assert_int_equal(pgs_concurrency_tick(&c, WINDOW - 1), 0);
    assert_int_equal(c.done, 5000);
    assert_int_equal(pgs_concurrency_tick(&c, WINDOW), 1); /* first move: fewer */
    assert_int_equal(c.limit, 6);
    assert_int_equal(c.done, 0);
    assert_int_equal(c.txns, 0);
}

/* Long transactions: a second holds a few, so the window waits for
 * PGS_CONCURRENCY_MIN_TXNS of them, or ten window lengths at most. */
static void test_long_transactions_widen_the_window(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, 0);
    int64_t now = 0;
    for (int t = 0; t < PGS_CONCURRENCY_MIN_TXNS - 1; t++) {
        pgs_concurrency_polled(&c, 1);
        pgs_concurrency_done(&c, 100, 20000);
        now += WINDOW / 4; /* 4 transactions a second */
        assert_int_equal(pgs_concurrency_tick(&c, now), 0);
    }
    pgs_concurrency_done(&c, 100, 20000);
    assert_int_equal(pgs_concurrency_tick(&c, now), 1);
    assert_int_equal(c.limit, 6);

    /* a trickle: after ten windows the window closes anyway */
    pgs_concurrency_polled(&c, 1);
    pgs_concurrency_done(&c, 10, 20000);
    assert_int_equal(pgs_concurrency_tick(&c, now + 10 * WINDOW - 1), 0);
    assert_int_equal(pgs_concurrency_tick(&c, now + 10 * WINDOW), 1);
}

static double flat_db(int limit)
{
    (void)limit;
    return 12000;
}

/* A rate that does not depend on the limit steps it down to the floor; there
 * it must keep probing upward, not sit at the floor for good. */
static void test_floor_keeps_probing(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 8, 50, WINDOW, now);
    simulate(&c, flat_db, 20, 1, 0.0, &now);
    int seen_above_floor = 0;
    for (int w = 0; w < 10; w++) {
        simulate(&c, flat_db, 1, 1, 0.0, &now);
        seen_above_floor |= c.limit > c.min;
        assert_true(c.limit <= 3);
    }
    assert_true(seen_above_floor);
}

/* Measured on 2 cores after the write path got cheaper (bench_e2e.sh,
 * transactions of ~170 commands): 2 in flight commit as much as 6, at a third
 * of the commit latency; beyond, the rate falls. */
static double two_core_db_flat(int limit)
{
    static const double pts[] = {0, 9000, 18400, 18500, 18400, 18300, 18200, 18000, 17700};
    if (limit <= 8)
        return pts[limit];
    return 17700 - (limit - 8) * (17700 - 10400) / 42.0;
}

/* The worker starts at the floor: a database far away doubles it each window
 * (slow start). At 2 in flight its windows are long (they wait for 30
 * transactions), yet it is past 32 within 20 windows (the first only
 * measures), where quarter steps from the floor would take about 30. */
static void test_floor_slow_start_climbs_fast(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 2, 50, WINDOW, now);
    assert_int_equal(c.limit, 2);
    assert_int_equal(c.slow_start, 1);
    simulate(&c, remote_db, 20, 1, 0.02, &now);
    assert_true(c.limit >= 32);
    double mean = simulate(&c, remote_db, 40, 20, 0.02, &now);
    assert_true(mean >= 40);
}

/* ... and one on two cores stays at a few: the first doubling does not pay,
 * the slow start ends, and the quarter steps keep it low, where it commits
 * as much as anywhere with the fewest transactions queued. */
static void test_floor_two_cores_stays_low(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 2, 50, WINDOW, now);
    double rate = 0;
    double mean = simulate_rate(&c, two_core_db_flat, 60, 50, 0.03, &now, &rate);
    assert_int_equal(c.slow_start, 0);
    assert_true(mean <= 4.0);
    assert_true(rate >= 0.95 * two_core_db_flat(3));
    /* the older 2-core curve (best rate at 4): from the floor too */
    pgs_concurrency_init(&c, 1, 2, 50, WINDOW, now);
    mean = simulate_rate(&c, two_core_db, 60, 30, 0.02, &now, &rate);
    assert_true(mean >= 2.0 && mean <= 5.0);
    assert_true(rate >= 0.8 * two_core_db(4));
}

/* One saturated window of @p txns transactions of 100 commands, each as long
 * as Little's law says. */
static int saturated_window(pgs_concurrency_t *c, int64_t *now, int txns)
{
    pgs_concurrency_polled(c, 1);
    for (int t = 0; t < txns; t++)
        pgs_concurrency_done(c, 100, (int64_t)c->limit * WINDOW / txns);
    *now += WINDOW;
    return pgs_concurrency_tick(c, *now);
}

/* Slow start waits for saturated windows like the rest, stops at max, and
 * ends at the first doubling that does not raise the rate by a quarter. */
static void test_slow_start_bounds(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    pgs_concurrency_init(&c, 1, 2, 5, WINDOW, now);
    for (int k = 0; k < 10; k++)
        pgs_concurrency_polled(&c, k == 0);
    for (int t = 0; t < 40; t++)
        pgs_concurrency_done(&c, 100, 20000);
    now += WINDOW;
    assert_int_equal(pgs_concurrency_tick(&c, now), 0); /* not saturated */
    assert_int_equal(c.limit, 2);
    /* the first saturated window holds the start: it counts for nothing */
    assert_int_equal(saturated_window(&c, &now, 40), 0);
    assert_int_equal(c.limit, 2);
    assert_int_equal(saturated_window(&c, &now, 40), 1);
    assert_int_equal(c.limit, 4);
    assert_int_equal(saturated_window(&c, &now, 80), 1);
    assert_int_equal(c.limit, 5); /* doubled up to max */
    assert_int_equal(c.slow_start, 1);
    assert_int_equal(saturated_window(&c, &now, 110), 0); /* at max: over */
    assert_int_equal(c.slow_start, 0);
    assert_int_equal(c.limit, 5);

    pgs_concurrency_init(&c, 1, 2, 50, WINDOW, now);
    assert_int_equal(saturated_window(&c, &now, 40), 0);
    assert_int_equal(saturated_window(&c, &now, 80), 1);
    assert_int_equal(c.limit, 4);
    assert_int_equal(c.warmed, 1);
    /* +20% rate at 1.67 times the latency: the score fell; the slow start
     * is over, and the limit goes down by a quarter */
    assert_int_equal(saturated_window(&c, &now, 96), 1);
    assert_int_equal(c.slow_start, 0);
    assert_int_equal(c.limit, 3);
}

static void test_fixed_and_bounds(void **state)
{
    (void)state;
    pgs_concurrency_t c;
    int64_t now = 0;
    /* adaptive off: always max */
    pgs_concurrency_init(&c, 0, 8, 50, WINDOW, now);
    assert_int_equal(c.limit, 50);
    simulate(&c, two_core_db, 20, 1, 0.02, &now);
    assert_int_equal(c.limit, 50);
    assert_int_equal(c.changes, 0);

    /* max below the start and below the floor */
    pgs_concurrency_init(&c, 1, 8, 3, WINDOW, now);
    assert_int_equal(c.limit, 3);
    assert_int_equal(c.min, 2);
    simulate(&c, two_core_db, 30, 1, 0.02, &now);
    pgs_concurrency_init(&c, 1, 8, 1, WINDOW, now);
    assert_int_equal(c.limit, 1);
    simulate(&c, remote_db, 10, 1, 0.02, &now);
    assert_int_equal(c.limit, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_few_cores_settles_low),
        cmocka_unit_test(test_remote_db_climbs_to_max),
        cmocka_unit_test(test_from_max_comes_down),
        cmocka_unit_test(test_unsaturated_windows_leave_it_alone),
        cmocka_unit_test(test_window_not_due),
        cmocka_unit_test(test_long_transactions_widen_the_window),
        cmocka_unit_test(test_floor_keeps_probing),
        cmocka_unit_test(test_floor_slow_start_climbs_fast),
        cmocka_unit_test(test_floor_two_cores_stays_low),
        cmocka_unit_test(test_slow_start_bounds),
        cmocka_unit_test(test_fixed_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
