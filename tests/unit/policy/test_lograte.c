/* Unit tests: bounded-rate log lines and their suppressed counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy/lograte.h"

static void test_first_passes_then_one_per_interval(void **state)
{
    (void)state;
    pgs_lograte_t r = {0};
    int64_t sup = -1;
    assert_int_equal(pgs_lograte_allow(&r, 1000, 10000000, &sup), 1);
    assert_int_equal(sup, 0);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(pgs_lograte_allow(&r, 1000 + i * 1000000, 10000000, &sup), 0);
    assert_int_equal(pgs_lograte_allow(&r, 10000999, 10000000, &sup), 0);
    assert_int_equal(pgs_lograte_allow(&r, 10001000, 10000000, &sup), 1);
    assert_int_equal(sup, 6);
    assert_int_equal(pgs_lograte_allow(&r, 10001001, 10000000, &sup), 0);
}

static void test_reset_lets_the_next_through(void **state)
{
    (void)state;
    pgs_lograte_t r = {0};
    int64_t sup = -1;
    assert_int_equal(pgs_lograte_allow(&r, 0, 10000000, &sup), 1);
    assert_int_equal(pgs_lograte_allow(&r, 5, 10000000, &sup), 0);
    pgs_lograte_reset(&r);
    assert_int_equal(pgs_lograte_allow(&r, 6, 10000000, &sup), 1);
    assert_int_equal(sup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_passes_then_one_per_interval),
        cmocka_unit_test(test_reset_lets_the_next_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
