/* Decimal text of integers: the same text as printf's PRId64 and PRIu64 at
 * every edge (zero, each power of ten and the one before it, the limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/numtext.h"

static void check_i64(int64_t v)
{
    char want[64], got[PGS_NUMTEXT_MAX];
    int n = snprintf(want, sizeof(want), "%" PRId64, v);
    size_t len = pgs_numtext_i64(v, got);
    assert_int_equal(len, (size_t)n);
    assert_string_equal(got, want);
}

static void check_u64(uint64_t v)
{
    char want[64], got[PGS_NUMTEXT_MAX];
    int n = snprintf(want, sizeof(want), "%" PRIu64, v);
    size_t len = pgs_numtext_u64(v, got);
    assert_int_equal(len, (size_t)n);
    assert_string_equal(got, want);
}

static void test_edges_signed(void **state)
{
    (void)state;
    check_i64(0);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN);
    check_i64(INT64_MIN + 1);
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10) {
        check_i64(p);
        check_i64(p - 1);
        check_i64(-p);
        check_i64(-p + 1);
        check_i64(p * 10 - 1);
    }
}

static void test_edges_unsigned(void **state)
{
    (void)state;
    check_u64(0);
    check_u64(UINT64_MAX);
    check_u64((uint64_t)INT64_MAX + 1);
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        check_u64(p);
        check_u64(p - 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_signed),
        cmocka_unit_test(test_edges_unsigned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
