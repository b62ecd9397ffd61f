/* Unit tests for run/fair.c: limits.* applied to the lanes, the over-limit
 * bound of a throttled clinic, and when a partition pauses for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/config.h"
#include "run/fair.h"

static void test_configure_from_settings(void **state)
{
    (void)state;
    pgs_config_t *cfg = pgs_config_new();
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    pgs_lanes_t *l = pgs_lanes_new();
    char err[256];
    assert_int_equal(pgs_fair_configure(rl, l, cfg, err, sizeof(err)), 0);
    assert_false(pgs_ratelimit_any(rl)); /* defaults: unlimited */
    assert_int_equal(pgs_config_set(cfg, "limits.overrides", "clinic-7:5:10", err, sizeof(err)), 0);
    assert_int_equal(pgs_fair_configure(rl, l, cfg, err, sizeof(err)), 0);
    double rate, burst;
    assert_int_equal(pgs_ratelimit_limit_of(rl, "clinic-7", 8, &rate, &burst), 1);
    assert_true(rate == 5 && burst == 10);
    /* a bad override keeps the limits there were */
    assert_int_equal(pgs_config_set(cfg, "limits.overrides", "clinic-7", err, sizeof(err)), 0);
    assert_int_equal(pgs_fair_configure(rl, l, cfg, err, sizeof(err)), -1);
    assert_int_equal(pgs_ratelimit_limit_of(rl, "clinic-7", 8, &rate, &burst), 1);
    pgs_lanes_free(l);
    pgs_ratelimit_free(rl);
    pgs_config_free(cfg);
}

typedef struct {
    pgs_lane_item_t li;
} witem_t;

static void test_over_limit_after_burst_and_two_seconds(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "c1:10:5", 0, err, sizeof(err)), 0);
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t *w = calloc(40, sizeof(*w));
    witem_t *w2 = calloc(40, sizeof(*w2));
    char key[32];
    int first_over = -1;
    for (int i = 0; i < 40; i++) {
        if (first_over < 0 && pgs_fair_over_limit(rl, l, "c1"))
            first_over = i;
        int n = snprintf(key, sizeof(key), "k%d", i);
        pgs_lanes_push(l, &w[i].li, "c1", key, (size_t)n);
        pgs_lanes_push(l, &w2[i].li, "c2", key, (size_t)n); /* unlimited */
    }
    assert_int_equal(first_over, 25); /* burst 5 + 2 s of 10/s */
    assert_false(pgs_fair_over_limit(rl, l, "c2"));
    assert_false(pgs_fair_over_limit(NULL, l, "c1"));
    pgs_lanes_free(l);
    pgs_ratelimit_free(rl);
    free(w);
    free(w2);
}

static void test_partition_pause_rule(void **state)
{
    (void)state;
    /* window 5000: pauses at 500 over-limit works that are half of it */
    assert_false(pgs_fair_partition_throttled(0, 0, 5000, 0));
    assert_false(pgs_fair_partition_throttled(499, 600, 5000, 0));
    assert_true(pgs_fair_partition_throttled(500, 1000, 5000, 0));
    assert_false(pgs_fair_partition_throttled(500, 1001, 5000, 0)); /* not mostly theirs */
    /* paused, it stays so down to a quarter, or a twentieth of the window */
    assert_true(pgs_fair_partition_throttled(300, 1200, 5000, 1));
    assert_false(pgs_fair_partition_throttled(299, 1200, 5000, 1));
    assert_true(pgs_fair_partition_throttled(250, 250, 5000, 1));
    assert_false(pgs_fair_partition_throttled(249, 249, 5000, 1));
    /* a small window: at least 10 */
    assert_false(pgs_fair_partition_throttled(9, 9, 20, 0));
    assert_true(pgs_fair_partition_throttled(10, 10, 20, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configure_from_settings),
        cmocka_unit_test(test_over_limit_after_burst_and_two_seconds),
        cmocka_unit_test(test_partition_pause_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
