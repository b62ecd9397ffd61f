/* Unit tests for fair dispatch in the key lanes: deficit round robin over
 * clinics, rate-limited clinics passed over until they have tokens, and
 * per-clinic queue counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "run/lanes.h"

#define S 1000000LL

typedef struct {
    pgs_lane_item_t li;
    int group;
} witem_t;

#define WITEM(p) ((witem_t *)((char *)(p)-offsetof(witem_t, li)))

/* @p n items of clinic-<group>, each on a key of its own (all ready). */
static witem_t *push_many(pgs_lanes_t *l, int group, int n)
{
    witem_t *w = calloc((size_t)n, sizeof(*w));
    char g[32], k[64];
    snprintf(g, sizeof(g), "clinic-%03d", group);
    for (int i = 0; i < n; i++) {
        int len = snprintf(k, sizeof(k), "%s/patient/%d", g, i);
        w[i].group = group;
        pgs_lanes_push(l, &w[i].li, g, k, (size_t)len);
    }
    return w;
}

static void complete_all(pgs_lanes_t *l, pgs_lane_item_t **out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pgs_lanes_complete(l, out[i]);
}

/* One clinic with thousands of ready lanes takes its quantum per round,
 * not a whole batch, while two others take theirs. */
static void test_drr_quantum_per_round(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    pgs_lanes_set_limits(l, NULL, 10);
    witem_t *flood = push_many(l, 1, 3000);
    witem_t *b = push_many(l, 2, 15);
    witem_t *c = push_many(l, 3, 15);
    pgs_lane_item_t *out[100];
    size_t taken[4] = {0};
    for (int t = 0; t < 3; t++) { /* one round: each clinic once */
        size_t n = pgs_lanes_take_at(l, out, 100, 0);
        assert_int_equal(n, 10);
        int g = WITEM(out[0])->group;
        for (size_t i = 0; i < n; i++)
            assert_int_equal(WITEM(out[i])->group, g);
        taken[g] += n;
        complete_all(l, out, n);
    }
    assert_int_equal(taken[1], 10);
    assert_int_equal(taken[2], 10);
    assert_int_equal(taken[3], 10);
    /* second round: the small clinics' last 5 each, the flood its 10 */
    size_t sum = 0;
    for (int t = 0; t < 3; t++) {
        size_t n = pgs_lanes_take_at(l, out, 100, 0);
        int g = WITEM(out[0])->group;
        assert_int_equal(n, g == 1 ? 10 : 5);
        sum += n;
        complete_all(l, out, n);
    }
    assert_int_equal(sum, 20);
    /* alone in the ring, the flood takes whole batches */
    assert_int_equal(pgs_lanes_take_at(l, out, 100, 0), 100);
    complete_all(l, out, 100);
    assert_int_equal(pgs_lanes_group_queued(l, "clinic-001"), 3000 - 120);
    assert_int_equal(pgs_lanes_group_queued(l, "clinic-002"), 0);
    pgs_lanes_free(l);
    free(flood);
    free(b);
    free(c);
}

/* Without a quantum each turn takes a whole batch (plain round robin). */
static void test_no_quantum_is_round_robin(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t *a = push_many(l, 1, 300);
    witem_t *b = push_many(l, 2, 300);
    pgs_lane_item_t *out[100];
    int last = -1;
    for (int t = 0; t < 6; t++) {
        assert_int_equal(pgs_lanes_take_at(l, out, 100, 0), 100);
        int g = WITEM(out[0])->group;
        assert_int_not_equal(g, last);
        last = g;
        complete_all(l, out, 100);
    }
    assert_int_equal(pgs_lanes_ready(l), 0);
    pgs_lanes_free(l);
    free(a);
    free(b);
}

/* A throttled clinic is passed over (the others go on), keeps its commands
 * ready, and goes again once it has tokens: nothing dropped. */
static void test_throttled_clinic_waits_never_dropped(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "clinic-001:100:20", 0, err, sizeof(err)),
                     0);
    pgs_lanes_t *l = pgs_lanes_new();
    pgs_lanes_set_limits(l, rl, 0);
    witem_t *flood = push_many(l, 1, 500);
    witem_t *other = push_many(l, 2, 50);
    pgs_lane_item_t *out[100];
    size_t n = pgs_lanes_take_at(l, out, 100, 0);
    assert_int_equal(n, 20); /* the burst */
    assert_int_equal(WITEM(out[0])->group, 1);
    complete_all(l, out, n);
    n = pgs_lanes_take_at(l, out, 100, 0);
    assert_int_equal(n, 50);
    assert_int_equal(WITEM(out[0])->group, 2);
    complete_all(l, out, n);
    /* only the throttled clinic is ready: nothing to take, nothing lost */
    assert_int_equal(pgs_lanes_take_at(l, out, 100, 0), 0);
    assert_int_equal(pgs_lanes_ready(l), 480);
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-001", 10, 0, 0), 0);
    assert_true(pgs_ratelimit_next_us(rl, 0) > 0);
    /* its rate over simulated time: 100 a second, each one dispatched */
    size_t applied = 20;
    int64_t now = 0;
    while (pgs_lanes_ready(l) > 0 && now < 10 * S) {
        now += S / 100;
        n = pgs_lanes_take_at(l, out, 100, now);
        applied += n;
        complete_all(l, out, n);
    }
    assert_int_equal(applied, 500);
    assert_true(now >= 48 * S / 10 && now <= 49 * S / 10); /* 480 more at 100/s */
    assert_true(pgs_ratelimit_throttled_s(rl, "clinic-001", now) > 4.5);
    assert_true(pgs_ratelimit_throttled_s(rl, "clinic-002", now) == 0);
    assert_int_equal(pgs_lanes_queued(l), 0);
    pgs_lanes_free(l);
    pgs_ratelimit_free(rl);
    free(flood);
    free(other);
}

/* A purge (revoked partition) of a throttled clinic's commands ends its
 * throttled spell; the counts stay right. */
static int pred_all(pgs_lane_item_t *it, void *o)
{
    (void)it;
    (void)o;
    return 1;
}

static void test_purge_throttled(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    assert_int_equal(pgs_ratelimit_configure(rl, 1, 1, "", 0, err, sizeof(err)), 0);
    pgs_lanes_t *l = pgs_lanes_new();
    pgs_lanes_set_limits(l, rl, 4);
    witem_t *a = push_many(l, 1, 10);
    pgs_lane_item_t *out[100];
    assert_int_equal(pgs_lanes_take_at(l, out, 100, 0), 1);
    complete_all(l, out, 1);
    assert_int_equal(pgs_lanes_take_at(l, out, 100, 0), 0); /* throttled */
    assert_int_equal(pgs_lanes_group_queued(l, "clinic-001"), 9);
    assert_int_equal(pgs_lanes_purge(l, pred_all, NULL, NULL), 9);
    assert_int_equal(pgs_lanes_ready(l), 0);
    assert_int_equal(pgs_lanes_group_queued(l, "clinic-001"), 0);
    assert_int_equal(pgs_ratelimit_next_us(rl, 0), -1); /* spell over */
    pgs_lanes_free(l);
    pgs_ratelimit_free(rl);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drr_quantum_per_round),
        cmocka_unit_test(test_no_quantum_is_round_robin),
        cmocka_unit_test(test_throttled_clinic_waits_never_dropped),
        cmocka_unit_test(test_purge_throttled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
