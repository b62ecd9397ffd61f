/* Unit tests: token buckets (refill, burst), per-clinic overrides and the
 * throttled time of each clinic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/ratelimit.h"

#define S 1000000LL /* one second in microseconds */

static void test_bucket_starts_full_and_refills_at_its_rate(void **state)
{
    (void)state;
    pgs_bucket_t b;
    pgs_bucket_init(&b, 100, 400, 0);
    assert_int_equal(pgs_bucket_take(&b, 1000, 0), 400); /* the burst */
    assert_int_equal(pgs_bucket_take(&b, 1, 0), 0);
    assert_true(pgs_bucket_wait_us(&b, 0) > 9000 && pgs_bucket_wait_us(&b, 0) <= 10001);
    assert_int_equal(pgs_bucket_take(&b, 1000, S / 2), 50);       /* 0.5 s at 100/s */
    assert_int_equal(pgs_bucket_take(&b, 1000, S / 2 + 5000), 0); /* half a token */
    assert_int_equal(pgs_bucket_take(&b, 1000, S / 2 + 10000), 1);
    assert_int_equal(pgs_bucket_wait_us(&b, 100 * S), 0);
}

static void test_bucket_never_holds_more_than_its_burst(void **state)
{
    (void)state;
    pgs_bucket_t b;
    pgs_bucket_init(&b, 10, 20, 0);
    assert_int_equal(pgs_bucket_take(&b, 5, 0), 5);
    assert_int_equal(pgs_bucket_take(&b, 1000, 3600 * S), 20);
    /* time going backwards earns nothing */
    assert_int_equal(pgs_bucket_take(&b, 1000, S), 0);
}

static void test_unlimited_bucket_takes_all(void **state)
{
    (void)state;
    pgs_bucket_t b;
    pgs_bucket_init(&b, 0, 0, 0);
    assert_int_equal(pgs_bucket_take(&b, 12345, 0), 12345);
    assert_int_equal(pgs_bucket_wait_us(&b, 0), 0);
}

static void test_parse_overrides(void **state)
{
    (void)state;
    pgs_ratelimit_override_t o[4];
    char err[128];
    assert_int_equal(pgs_ratelimit_parse_overrides("", o, 4, err, sizeof(err)), 0);
    assert_int_equal(pgs_ratelimit_parse_overrides(" clinic-007:200:400 , clinic-009 : 50:100,c3:5",
                                                   o, 4, err, sizeof(err)),
                     3);
    assert_string_equal(o[0].clinic, "clinic-007");
    assert_true(o[0].rate == 200 && o[0].burst == 400);
    assert_string_equal(o[1].clinic, "clinic-009");
    assert_true(o[1].rate == 50 && o[1].burst == 100);
    assert_true(o[2].rate == 5 && o[2].burst == 5); /* burst defaults to the rate */
    const char *bad[] = {"clinic-1", "clinic-1:",      "clinic-1:0",      "clinic-1:-3:5",
                         ":5",       "clinic-1:5:0.5", "clinic-1:5:10 x", "c:abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(pgs_ratelimit_parse_overrides(bad[i], o, 4, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
}

static void test_default_and_overrides(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    /* nothing configured: everything goes */
    assert_int_equal(pgs_ratelimit_take(rl, "a", 1, 500, 0), 500);
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "clinic-007:2:4", 0, err, sizeof(err)), 0);
    assert_true(pgs_ratelimit_any(rl));
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-001", 10, 500, 0), 500); /* unlimited */
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-007", 10, 500, 0), 4);
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-007", 10, 500, S), 2);
    /* a default for everyone else; the override still wins */
    assert_int_equal(pgs_ratelimit_configure(rl, 10, 0, "clinic-007:2:4", S, err, sizeof(err)), 0);
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-001", 10, 500, S), 10); /* burst = rate */
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-007", 10, 500, 2 * S), 2);
    double rate, burst;
    assert_int_equal(pgs_ratelimit_limit_of(rl, "clinic-007", 10, &rate, &burst), 1);
    assert_true(rate == 2 && burst == 4);
    /* a bad override changes nothing */
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "clinic-007", 2 * S, err, sizeof(err)), -1);
    assert_int_equal(pgs_ratelimit_limit_of(rl, "clinic-001", 10, &rate, &burst), 1);
    /* reloaded without limits: unlimited again */
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "", 3 * S, err, sizeof(err)), 0);
    assert_false(pgs_ratelimit_any(rl));
    assert_int_equal(pgs_ratelimit_take(rl, "clinic-007", 10, 500, 3 * S), 500);
    pgs_ratelimit_free(rl);
}

static void test_reload_cuts_tokens_to_the_new_burst(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    assert_int_equal(pgs_ratelimit_configure(rl, 100, 1000, "", 0, err, sizeof(err)), 0);
    assert_int_equal(pgs_ratelimit_take(rl, "c", 1, 1, 0), 1); /* seen: 999 left */
    assert_int_equal(pgs_ratelimit_configure(rl, 100, 10, "", 0, err, sizeof(err)), 0);
    assert_int_equal(pgs_ratelimit_take(rl, "c", 1, 1000, 0), 10);
    pgs_ratelimit_free(rl);
}

typedef struct {
    int n;
    char clinic[32];
    double seconds;
} seen_t;

static void on_throttled(const char *clinic, double seconds, void *opaque)
{
    seen_t *s = opaque;
    s->n++;
    strncpy(s->clinic, clinic, sizeof(s->clinic) - 1);
    s->seconds = seconds;
}

static void test_throttled_time(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128];
    assert_int_equal(pgs_ratelimit_configure(rl, 0, 0, "x:1:1", 0, err, sizeof(err)), 0);
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 1, 0), 1);     /* all it wanted */
    assert_int_equal(pgs_ratelimit_next_us(rl, 0), -1);            /* not throttled yet */
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 4, S / 4), 0); /* spell starts */
    assert_true(pgs_ratelimit_next_us(rl, S / 4) > 0);
    assert_true(pgs_ratelimit_throttled_s(rl, "x", S / 2) > 0.24);
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 4, S / 2), 0); /* same spell */
    /* one of four: still held back */
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 4, S + S / 4), 1);
    assert_true(pgs_ratelimit_throttled_s(rl, "x", S + S / 4) > 0.99);
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 1, 2 * S + S / 4), 1); /* ends: 2 s */
    double t = pgs_ratelimit_throttled_s(rl, "x", 10 * S);
    assert_true(t > 1.99 && t < 2.01);
    assert_int_equal(pgs_ratelimit_spells(rl), 1);
    /* a spell ended by idleness (nothing ready) counts up to then */
    assert_int_equal(pgs_ratelimit_take(rl, "x", 1, 4, 2 * S + S / 4), 0);
    pgs_ratelimit_idle(rl, "x", 1, 3 * S + S / 4);
    seen_t s = {0};
    assert_int_equal(pgs_ratelimit_each_throttled(rl, 50 * S, on_throttled, &s), 1);
    assert_string_equal(s.clinic, "x");
    assert_true(s.seconds > 2.99 && s.seconds < 3.01);
    assert_true(pgs_ratelimit_throttled_s(rl, "unknown", 0) == 0);
    pgs_ratelimit_free(rl);
}

static void test_many_clinics(void **state)
{
    (void)state;
    pgs_ratelimit_t *rl = pgs_ratelimit_new();
    char err[128], name[32];
    assert_int_equal(pgs_ratelimit_configure(rl, 3, 3, "", 0, err, sizeof(err)), 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2000; i++) {
            int n = snprintf(name, sizeof(name), "clinic-%04d", i);
            assert_int_equal(pgs_ratelimit_take(rl, name, (size_t)n, 2, 0), round == 0 ? 2 : 1);
        }
    }
    pgs_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_starts_full_and_refills_at_its_rate),
        cmocka_unit_test(test_bucket_never_holds_more_than_its_burst),
        cmocka_unit_test(test_unlimited_bucket_takes_all),
        cmocka_unit_test(test_parse_overrides),
        cmocka_unit_test(test_default_and_overrides),
        cmocka_unit_test(test_reload_cuts_tokens_to_the_new_burst),
        cmocka_unit_test(test_throttled_time),
        cmocka_unit_test(test_many_clinics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
