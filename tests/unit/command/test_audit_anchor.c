/* Unit tests for the anchor records `pgscribe audit verify --anchors` reads
 * back, and the NDJSON unescaping of `pgscribe audit export`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "command/audit_anchor.h"
#include "command/audit_export.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *line, pgs_audit_anchors_t *a)
{
    return pgs_audit_anchor_parse(line, strlen(line), a);
}

static void test_record(void **state)
{
    pgs_audit_anchors_t a = {0};
    (void)state;
    /* as json_build_object prints it */
    assert_int_equal(parse("{\"clinic_id\" : \"clinic-001\", \"seq\" : 40, \"hash\" : \"" H64
                           "\", \"recorded_at\" : \"2026-12-02T07:03:17.5Z\", \"anchored_at\" : "
                           "\"2026-12-02T07:05:00.1Z\", \"system_identifier\" : null, "
                           "\"database\" : \"pgscribe\"}\n",
                           &a),
                     0);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.v[0].clinic, "clinic-001");
    assert_int_equal(a.v[0].seq, 40);
    assert_string_equal(a.v[0].hash, H64);
    assert_string_equal(a.v[0].anchored_at, "2026-12-02T07:05:00.1Z");
    /* compact, keys in another order, escapes in the clinic id */
    assert_int_equal(
        parse("{\"hash\":\"" H64 "\",\"seq\":7,\"clinic_id\":\"a\\\"b\\\\c\\u0041\"}", &a), 0);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.v[1].clinic, "a\"b\\cA");
    assert_int_equal(a.v[1].seq, 7);
    assert_string_equal(a.v[1].anchored_at, "");
    pgs_audit_anchors_free(&a);
}

static void test_not_anchors(void **state)
{
    pgs_audit_anchors_t a = {0};
    (void)state;
    assert_int_equal(parse("anchored 3 clinic heads to t", &a), -1);
    assert_int_equal(parse("", &a), -1);
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"seq\":1}", &a), -1);            /* no hash */
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"hash\":\"" H64 "\"}", &a), -1); /* no seq */
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"seq\":0,\"hash\":\"" H64 "\"}", &a), -1);
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"seq\":\"5\",\"hash\":\"" H64 "\"}", &a), -1);
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"seq\":5,\"hash\":\"abc\"}", &a), -1);
    assert_int_equal(parse("{\"clinic_id\":\"c\",\"seq\":5,\"hash\":\"" H64 "\"", &a),
                     -1); /* unterminated */
    assert_int_equal(
        parse("{\"clinic_id\":\"c\",\"seq\":5,\"hash\":\"XYZ3456789abcdef0123456789abcd"
              "ef0123456789abcdef0123456789abcdef\"}",
              &a),
        -1);
    assert_int_equal(parse("{\"clinic_id\":\"c\\q\",\"seq\":5,\"hash\":\"" H64 "\"}", &a), -1);
    assert_int_equal(a.n, 0);
    pgs_audit_anchors_free(&a);
}

static void test_unescape(void **state)
{
    (void)state;
    char line[] = "{\"details\":\"{\\\\\"k\\\\\": \\\\\"v\\\\\\\\t\\\\\"}\"}";
    /* COPY text doubles every backslash of the JSON text */
    size_t n = pgs_audit_export_unescape(line, strlen(line));
    line[n] = '\0';
    assert_string_equal(line, "{\"details\":\"{\\\"k\\\": \\\"v\\\\t\\\"}\"}");
    char plain[] = "{\"a\":1}\n";
    assert_int_equal(pgs_audit_export_unescape(plain, strlen(plain)), strlen(plain));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_not_anchors),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
