/* Unit tests: W3C traceparent parsing (the specification's valid and
 * invalid forms) and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/traceparent.h"

static int parse(const char *s, pgs_traceparent_t *tp)
{
    return pgs_traceparent_parse(s, strlen(s), tp);
}

static void test_valid_round_trip(void **state)
{
    (void)state;
    const char *s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    pgs_traceparent_t tp;
    assert_int_equal(parse(s, &tp), 0);
    assert_int_equal(tp.version, 0);
    assert_int_equal(tp.trace_id[0], 0x4b);
    assert_int_equal(tp.trace_id[15], 0x36);
    assert_int_equal(tp.span_id[0], 0x00);
    assert_int_equal(tp.span_id[7], 0xb7);
    assert_true(pgs_traceparent_sampled(&tp));
    char buf[PGS_TRACEPARENT_LEN + 1];
    pgs_traceparent_format(&tp, buf);
    assert_string_equal(buf, s);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &tp), 0);
    assert_false(pgs_traceparent_sampled(&tp));
}

static void test_invalid_forms(void **state)
{
    (void)state;
    pgs_traceparent_t tp;
    const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",     /* short */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* 00 with more */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  /* not hex */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* future, no '-' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &tp), -1);
    assert_int_equal(pgs_traceparent_parse(NULL, 0, &tp), -1);
}

static void test_future_version(void **state)
{
    (void)state;
    pgs_traceparent_t tp;
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", &tp), 0);
    assert_int_equal(tp.version, 0xcc);
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &tp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid_round_trip),
                                       cmocka_unit_test(test_invalid_forms),
                                       cmocka_unit_test(test_future_version)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
