/* Unit tests for the resume floors setting (floors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "run/floors.h"

static void test_format(void **state)
{
    (void)state;
    char out[128];
    const int32_t parts[] = {3, 5, 3, 7, 8};
    const int64_t floors[] = {120, -1, 118, 0, 9000000000};
    assert_int_equal(pgs_floors_format("7311522045618737170/2", parts, floors, 5, out, sizeof(out)),
                     0);
    /* partition 3 once (its first floor), 5 unknown, 7 at 0 */
    assert_string_equal(out, "7311522045618737170/2,3:120,7:0,8:9000000000,");
    assert_int_equal(pgs_floors_format("1/1", parts, floors, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "1/1,");
}

static void test_unknown_partition_first(void **state)
{
    (void)state;
    char out[64];
    const int32_t parts[] = {4, 4};
    const int64_t floors[] = {-1, 77};
    assert_int_equal(pgs_floors_format("1/1", parts, floors, 2, out, sizeof(out)), 0);
    assert_string_equal(out, "1/1,4:77,");
}

static void test_no_identity_no_floor(void **state)
{
    (void)state;
    char out[64] = "x";
    const int32_t parts[] = {1};
    const int64_t floors[] = {10};
    assert_int_equal(pgs_floors_format("", parts, floors, 1, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(pgs_floors_format(NULL, parts, floors, 1, out, sizeof(out)), -1);
    assert_string_equal(out, "");
}

static void test_too_long_is_empty(void **state)
{
    (void)state;
    char out[16];
    const int32_t parts[] = {1, 2, 3};
    const int64_t floors[] = {100000, 200000, 300000};
    assert_int_equal(pgs_floors_format("1/1", parts, floors, 3, out, sizeof(out)), -1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_unknown_partition_first),
        cmocka_unit_test(test_no_identity_no_floor),
        cmocka_unit_test(test_too_long_is_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
