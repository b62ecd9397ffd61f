/* Unit tests for operator-written durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/duration.h"

static void test_units(void **state)
{
    (void)state;
    int64_t s = -1;
    assert_int_equal(pgs_duration_parse("45s", &s), 0);
    assert_int_equal(s, 45);
    assert_int_equal(pgs_duration_parse("90m", &s), 0);
    assert_int_equal(s, 5400);
    assert_int_equal(pgs_duration_parse("12h", &s), 0);
    assert_int_equal(s, 43200);
    assert_int_equal(pgs_duration_parse("30d", &s), 0);
    assert_int_equal(s, 30 * 86400);
    assert_int_equal(pgs_duration_parse("2w", &s), 0);
    assert_int_equal(s, 14 * 86400);
    assert_int_equal(pgs_duration_parse("7y", &s), 0);
    assert_int_equal(s, 7LL * 365 * 86400);
    assert_int_equal(pgs_duration_parse("100y", &s), 0);
    assert_int_equal(s, 100LL * 365 * 86400);
    assert_int_equal(pgs_duration_parse("0s", &s), 0);
    assert_int_equal(s, 0);
}

static void test_rejects(void **state)
{
    (void)state;
    int64_t s = 7;
    static const char *const bad[] = {"",       "d",    "30",  "30x",  "30dd",
                                      "-1d",    " 1d",  "1d ", "1.5h", "1e3s",
                                      "36501d", "101y", "1yy", "y",    "99999999999999999999s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pgs_duration_parse(bad[i], &s), -1);
    assert_int_equal(pgs_duration_parse(NULL, &s), -1);
    assert_int_equal(s, 7); /* untouched on error */
    assert_int_equal(pgs_duration_parse("36500d", &s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
