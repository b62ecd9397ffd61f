/* Unit tests: OTLP/JSON encoding of spans (the protobuf JSON mapping of
 * ExportTraceServiceRequest): every attribute type, hex ids, times and
 * int64 values as decimal strings, enums as integers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/otlpjson.h"

static const char expected[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"pgscribe\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"pgscribe\",\"version\":\"1.2.3\"},\"spans\":["
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"0102030405060708\","
    "\"parentSpanId\":\"00f067aa0ba902b7\",\"name\":\"process clinic.commands\",\"kind\":5,"
    "\"startTimeUnixNano\":\"1700000000000000001\",\"endTimeUnixNano\":\"1700000000123456789\","
    "\"attributes\":["
    "{\"key\":\"messaging.system\",\"value\":{\"stringValue\":\"kafka\"}},"
    "{\"key\":\"messaging.kafka.offset\",\"value\":{\"intValue\":\"9007199254740993\"}},"
    "{\"key\":\"negative\",\"value\":{\"intValue\":\"-42\"}},"
    "{\"key\":\"flag\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.5}},"
    "{\"key\":\"quoted\",\"value\":{\"stringValue\":\"a\\\"b\\\\c\\n\"}}],"
    "\"events\":[{\"timeUnixNano\":\"1700000000050000000\",\"name\":\"retry\",\"attributes\":["
    "{\"key\":\"pgscribe.attempt\",\"value\":{\"intValue\":\"1\"}},"
    "{\"key\":\"pgscribe.error.code\",\"value\":{\"stringValue\":\"40001\"}}]}],"
    "\"status\":{\"message\":\"database rejected INSERT on patients (SQLSTATE 23514)\","
    "\"code\":2}},"
    "{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
    "\"name\":\"root\",\"kind\":3,\"startTimeUnixNano\":\"0\",\"endTimeUnixNano\":\"1\","
    "\"attributes\":[],\"status\":{\"code\":0}}]}]}]}";

static void fill(pgs_otlp_span_t *sp, pgs_otlp_span_t *root)
{
    static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t parent[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    pgs_otlp_span_init(sp, "process clinic.commands", PGS_OTLP_KIND_CONSUMER);
    memcpy(sp->trace_id, tid, 16);
    for (int i = 0; i < 8; i++)
        sp->span_id[i] = (uint8_t)(i + 1);
    memcpy(sp->parent_span_id, parent, 8);
    sp->has_parent = 1;
    sp->start_ns = 1700000000000000001ULL;
    sp->end_ns = 1700000000123456789ULL;
    pgs_otlp_attr_str(sp, "messaging.system", "kafka");
    pgs_otlp_attr_int(sp, "messaging.kafka.offset", 9007199254740993LL); /* > 2^53 */
    pgs_otlp_attr_int(sp, "negative", -42);
    pgs_otlp_attr_bool(sp, "flag", 7);
    pgs_otlp_attr_double(sp, "ratio", 0.5);
    pgs_otlp_attr_str(sp, "quoted", "a\"b\\c\n");
    pgs_otlp_event_t *ev = pgs_otlp_event_add(sp, "retry", 1700000000050000000ULL);
    pgs_otlp_event_int(ev, "pgscribe.attempt", 1);
    pgs_otlp_event_str(ev, "pgscribe.error.code", "40001");
    pgs_otlp_span_status(sp, PGS_OTLP_STATUS_ERROR,
                         "database rejected INSERT on patients (SQLSTATE 23514)");

    pgs_otlp_span_init(root, "root", PGS_OTLP_KIND_CLIENT);
    memcpy(root->trace_id, tid, 16);
    for (int i = 0; i < 8; i++)
        root->span_id[i] = (uint8_t)(0xa1 + i);
    root->end_ns = 1;
}

static void test_encode_fixed(void **state)
{
    (void)state;
    pgs_otlp_span_t sp, root;
    fill(&sp, &root);
    pgs_otlp_attr_t rattr = {.key = "service.name", .type = PGS_OTLP_STR, .s = "pgscribe"};
    pgs_otlp_resource_t res = {
        .attrs = &rattr, .nattrs = 1, .scope_name = "pgscribe", .scope_version = "1.2.3"};
    pgs_otlp_span_t *spans[] = {&sp, &root};
    char *text = pgs_otlp_encode(&res, spans, 2);
    assert_non_null(text);
    assert_string_equal(text, expected);

    /* and it parses back to the same document */
    json_error_t jerr;
    json_t *got = json_loads(text, 0, &jerr);
    json_t *want = json_loads(expected, 0, &jerr);
    assert_non_null(got);
    assert_non_null(want);
    assert_true(json_equal(got, want));
    json_t *span0 = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(got, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    assert_true(json_is_string(json_object_get(span0, "startTimeUnixNano")));
    assert_true(json_is_integer(json_object_get(span0, "kind")));
    assert_int_equal(strlen(json_string_value(json_object_get(span0, "traceId"))), 32);
    json_decref(got);
    json_decref(want);
    free(text);
    pgs_otlp_span_clear(&sp);
    pgs_otlp_span_clear(&root);
}

static void test_bounds_counted(void **state)
{
    (void)state;
    pgs_otlp_span_t sp;
    pgs_otlp_span_init(&sp, "s", PGS_OTLP_KIND_INTERNAL);
    for (int i = 0; i < PGS_OTLP_MAX_ATTRS + 3; i++)
        pgs_otlp_attr_int(&sp, "k", i);
    for (int i = 0; i < PGS_OTLP_MAX_EVENTS + 2; i++)
        pgs_otlp_event_add(&sp, "e", (uint64_t)i);
    assert_int_equal(sp.nattrs, PGS_OTLP_MAX_ATTRS);
    assert_int_equal(sp.dropped_attrs, 3);
    assert_int_equal(sp.dropped_events, 2);
    pgs_otlp_resource_t res = {.scope_name = "pgscribe"};
    pgs_otlp_span_t *spans[] = {&sp};
    char *text = pgs_otlp_encode(&res, spans, 1);
    assert_non_null(strstr(text, "\"droppedAttributesCount\":3"));
    assert_non_null(strstr(text, "\"droppedEventsCount\":2"));
    free(text);
    pgs_otlp_span_clear(&sp);
}

static void test_invalid_utf8_is_emptied(void **state)
{
    (void)state;
    pgs_otlp_span_t sp;
    pgs_otlp_span_init(&sp, "s", PGS_OTLP_KIND_INTERNAL);
    pgs_otlp_attr_str(&sp, "bad", "\xff\xfe");
    pgs_otlp_resource_t res = {.scope_name = "pgscribe"};
    pgs_otlp_span_t *spans[] = {&sp};
    char *text = pgs_otlp_encode(&res, spans, 1);
    assert_non_null(strstr(text, "{\"key\":\"bad\",\"value\":{\"stringValue\":\"\"}}"));
    free(text);
    pgs_otlp_span_clear(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_encode_fixed),
                                       cmocka_unit_test(test_bounds_counted),
                                       cmocka_unit_test(test_invalid_utf8_is_emptied)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
