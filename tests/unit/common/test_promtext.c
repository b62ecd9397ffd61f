/* Unit tests: the Prometheus text format's escaping and numbers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/promtext.h"

static void test_family_and_samples(void **state)
{
    (void)state;
    pgs_sbuf_t sb = {0};
    pgs_promtext_family(&sb, "pgscribe_x_total", "counter", "A help\nwith \\ and a newline");
    const char *labels[] = {"clinic", "a\"b\\c\nd", "class", "tenant"};
    pgs_promtext_sample(&sb, "pgscribe_x_total", labels, 2, 42);
    pgs_promtext_sample(&sb, "pgscribe_y_seconds", NULL, 0, 0.25);
    const char *le[] = {"le", "+Inf"};
    pgs_promtext_sample(&sb, "pgscribe_z_bucket", le, 1, 7);
    pgs_promtext_sample(&sb, "pgscribe_inf", NULL, 0, INFINITY);
    assert_string_equal(sb.buf, "# HELP pgscribe_x_total A help\\nwith \\\\ and a newline\n"
                                "# TYPE pgscribe_x_total counter\n"
                                "pgscribe_x_total{clinic=\"a\\\"b\\\\c\\nd\",class=\"tenant\"} 42\n"
                                "pgscribe_y_seconds 0.25\n"
                                "pgscribe_z_bucket{le=\"+Inf\"} 7\n"
                                "pgscribe_inf +Inf\n");
    free(sb.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_family_and_samples)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
