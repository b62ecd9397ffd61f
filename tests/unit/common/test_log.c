/* Unit tests: the log writer's logfmt and JSON lines, their escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"

static char *line(pgs_log_format_t fmt, const char *msg, const char *const *kv)
{
    pgs_sbuf_t sb = {0};
    pgs_log_fmt_line(&sb, fmt, "2026-01-02T03:04:05.006Z", PGS_LOG_WARN, "w-1", "kafka", msg, kv);
    return sb.buf;
}

static void test_logfmt_quotes_and_escapes(void **state)
{
    (void)state;
    const char *kv[] = {"fac",    "FAIL",         "name", "rdkafka#consumer-1",
                        "reason", "a \"b\" \\ c", NULL};
    char *s = line(PGS_LOG_LOGFMT, "line one\nline\ttwo", kv);
    assert_string_equal(s, "ts=2026-01-02T03:04:05.006Z level=warn worker=w-1 module=kafka "
                           "msg=\"line one\\nline two\" fac=FAIL name=rdkafka#consumer-1 "
                           "reason=\"a \\\"b\\\" \\\\ c\"\n");
    free(s);
    const char *empty[] = {"k", "", "eq", "a=b", NULL};
    s = line(PGS_LOG_LOGFMT, "ok", empty);
    assert_non_null(strstr(s, " msg=\"ok\" k=\"\" eq=\"a=b\"\n"));
    free(s);
}

static void test_json_escapes_and_replaces_bad_utf8(void **state)
{
    (void)state;
    const char *kv[] = {"broker", "127.0.0.1:9092", NULL};
    char *s = line(PGS_LOG_JSON, "q\"\\\x01 \xc3\xa9 \xff", kv);
    assert_string_equal(s, "{\"ts\":\"2026-01-02T03:04:05.006Z\",\"level\":\"warn\",\"worker\":"
                           "\"w-1\",\"module\":\"kafka\",\"msg\":\"q\\\"\\\\\\u0001 \xc3\xa9 ?\","
                           "\"broker\":\"127.0.0.1:9092\"}\n");
    free(s);
}

static void test_format_parse(void **state)
{
    (void)state;
    pgs_log_format_t f = PGS_LOG_LOGFMT;
    assert_int_equal(pgs_log_format_parse("json", &f), 0);
    assert_int_equal(f, PGS_LOG_JSON);
    assert_int_equal(pgs_log_format_parse("logfmt", &f), 0);
    assert_int_equal(f, PGS_LOG_LOGFMT);
    assert_int_equal(pgs_log_format_parse("text", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logfmt_quotes_and_escapes),
        cmocka_unit_test(test_json_escapes_and_replaces_bad_utf8),
        cmocka_unit_test(test_format_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
