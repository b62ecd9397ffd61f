/* Unit tests for registry ids in the codec: writer schemas from a resolver,
 * read into the current reader schema; unknown, incompatible and
 * unavailable ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"

#define UUID "3f2b8c1e-7a4d-4e2b-9c1a-0123456789ab"

/* v2 with one more optional field at the end: its bytes are v2's and one
 * 0x00 (the union's null branch). */
static const char v3_schema[] =
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"actor\",\"type\":\"string\"},{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"data\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]},\"default\":{}},"
    "{\"name\":\"expected_version\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"issued_at\",\"type\":\"long\"},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
/* issued_at as a string: no reader can take that as its long */
static const char bad_schema[] =
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"actor\",\"type\":\"string\"},{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"issued_at\",\"type\":\"string\"}]}";
/* no command_id at all */
static const char missing_schema[] =
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"clinic_id\",\"type\":\"string\"}]}";

static int available = 1;
static int calls[128];

static int resolve(void *opaque, int32_t id, const char **schema, char *errstr, size_t size)
{
    (void)opaque;
    if (id >= 0 && id < 128)
        calls[id]++;
    if (!available) {
        snprintf(errstr, size, "schema registry: Couldn't connect to server");
        return -1;
    }
    switch (id) {
    case 40:
        *schema = pgs_codec_schema_text(PGS_SCHEMA_ID_WRITE_COMMAND_V1);
        return 0;
    case 41:
        *schema = pgs_codec_schema_text(PGS_SCHEMA_ID_WRITE_COMMAND_V2);
        return 0;
    case 42:
        *schema = v3_schema;
        return 0;
    case 43:
        *schema = bad_schema;
        return 0;
    case 44:
        *schema = pgs_codec_schema_text(PGS_SCHEMA_ID_AUDIT_EVENT_V1);
        return 0;
    case 45:
        *schema = missing_schema;
        return 0;
    case 46:
        *schema = "{not json";
        return 0;
    default:
        return 1;
    }
}

static pgs_codec_t *codec;

static int setup(void **state)
{
    (void)state;
    char err[256];
    codec = pgs_codec_new(err, sizeof(err));
    if (!codec)
        return -1;
    pgs_codec_set_resolver(codec, resolve, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgs_codec_free(codec);
    return 0;
}

static pgs_command_t *sample(void)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = UUID;
    c->clinic_id = "clinic-7";
    c->actor = "user:42";
    c->entity = "patient";
    c->op = PGS_OP_UPSERT;
    c->key_cnt = 1;
    c->key = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
    c->key[0] = (pgs_field_t){.name = "id", .value = {.type = PGS_VAL_LONG, .u.l = 7}};
    c->data_cnt = 1;
    c->data = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
    c->data[0] =
        (pgs_field_t){.name = "name", .value = {.type = PGS_VAL_STRING, .u.s = {"Jones", 5}}};
    c->has_expected_version = 1;
    c->expected_version = 3;
    c->issued_at_ms = 1700000000123LL;
    return c;
}

/* Encoded with shipped @p shipped_id, framed with registry @p id; @p extra
 * bytes appended (a newer writer's trailing fields). */
static char *framed(int shipped_id, int32_t id, const char *extra, size_t extra_len, size_t *len)
{
    pgs_command_t *c = sample();
    char *buf = NULL;
    assert_int_equal(pgs_codec_encode_command(codec, c, 0, shipped_id, &buf, len), 0);
    pgs_command_free(c);
    buf = realloc(buf, *len + extra_len);
    memcpy(buf + *len, extra, extra_len);
    *len += extra_len;
    pgs_codec_set_frame_id(buf, *len, id);
    return buf;
}

static pgs_err_t decode(int shipped_id, int32_t id, const char *extra, size_t extra_len,
                        pgs_command_t **out, char *err, size_t err_size)
{
    size_t len;
    char *buf = framed(shipped_id, id, extra, extra_len, &len);
    pgs_err_t rc = pgs_codec_decode_command(codec, buf, len, 0, out, err, err_size);
    free(buf);
    return rc;
}

/* Registry ids of v1, v2 and a v3 with an added optional field: each read
 * into the reader schema; the writer schema is resolved once per id. */
static void test_registry_versions(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_command_t *cmd = NULL;
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 41, "", 0, &cmd, err, sizeof(err)),
                     PGS_OK);
    assert_string_equal(cmd->command_id, UUID);
    assert_int_equal(cmd->op, PGS_OP_UPSERT);
    assert_true(cmd->has_expected_version);
    assert_int_equal(cmd->expected_version, 3);
    assert_int_equal(cmd->issued_at_ms, 1700000000123LL);
    pgs_command_free(cmd);

    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V1, 40, "", 0, &cmd, err, sizeof(err)),
                     PGS_OK);
    assert_false(cmd->has_expected_version); /* v1 has none: the reader's default */
    assert_int_equal(cmd->data_cnt, 1);
    pgs_command_free(cmd);

    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 42, "\0", 1, &cmd, err, sizeof(err)),
                     PGS_OK);
    assert_int_equal(cmd->expected_version, 3);
    assert_string_equal(cmd->data[0].name, "name");
    pgs_command_free(cmd);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 41, "", 0, &cmd, err, sizeof(err)),
                         PGS_OK);
        pgs_command_free(cmd);
    }
    assert_int_equal(calls[41], 1);
    assert_int_equal(calls[40], 1);
    assert_int_equal(calls[42], 1);
}

/* With a resolver, ids are the registry's: shipped id 2 is not known to it. */
static void test_registry_unknown(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_command_t *cmd = NULL;
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 2, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
    assert_null(cmd);
    assert_non_null(strstr(err, "schema id 2 is not in the schema registry"));
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 999, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
    /* an AuditEvent schema on the commands topic */
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 44, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
    assert_non_null(strstr(err, "is not a WriteCommand schema"));
    /* a negative id (the frame's int32) is no registry id */
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, -5, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
}

/* Writer schemas the reader cannot read: a field of another type, a
 * required field missing, text that is no Avro schema. */
static void test_registry_incompatible(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_command_t *cmd = NULL;
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 43, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_SCHEMA_INCOMPATIBLE);
    assert_non_null(strstr(err, "field 'issued_at' has another type"));
    assert_string_equal(pgs_error_code(PGS_E_DECODE_SCHEMA_INCOMPATIBLE),
                        "DECODE_SCHEMA_INCOMPATIBLE");
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 45, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_SCHEMA_INCOMPATIBLE);
    assert_non_null(strstr(err, "'command_id' is missing from the writer"));
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 46, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_SCHEMA_INCOMPATIBLE);
    assert_non_null(strstr(err, "not a valid Avro schema"));
}

/* A registry that cannot be asked: PGS_E_REGISTRY_UNAVAILABLE, which is no
 * dead-letter class; nothing is cached, so the id resolves once it is back. */
static void test_registry_unavailable(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_command_t *cmd = NULL;
    available = 0;
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 50, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_REGISTRY_UNAVAILABLE);
    assert_non_null(strstr(err, "connect"));
    assert_int_equal(pgs_error_class(PGS_E_REGISTRY_UNAVAILABLE), PGS_ECLASS_REGISTRY);
    /* a cached id needs no registry */
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 41, "", 0, &cmd, err, sizeof(err)),
                     PGS_OK);
    pgs_command_free(cmd);
    available = 1;
    assert_int_equal(decode(PGS_SCHEMA_ID_WRITE_COMMAND_V2, 50, "", 0, &cmd, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA); /* asked again: a real answer now */
    assert_int_equal(calls[50], 2);
}

/* JSON messages and metrics records never ask the registry. */
static void test_registry_not_for_json_or_metrics(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_command_t *cmd = NULL;
    pgs_command_t *c = sample();
    char *json = pgs_codec_json_from_command(c);
    pgs_command_free(c);
    available = 0;
    assert_int_equal(pgs_codec_decode_command(codec, json, strlen(json), 1, &cmd, err, sizeof(err)),
                     PGS_OK);
    pgs_command_free(cmd);
    free(json);
    pgs_metrics_record_t m = {.worker_id = "w", .breaker_state = "closed"};
    char *buf = NULL, *text = NULL;
    size_t len = 0;
    assert_int_equal(pgs_codec_encode_metrics(codec, &m, &buf, &len), 0);
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len, &text, err, sizeof(err)), PGS_OK);
    free(buf);
    free(text);
    available = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_versions),
        cmocka_unit_test(test_registry_unknown),
        cmocka_unit_test(test_registry_incompatible),
        cmocka_unit_test(test_registry_unavailable),
        cmocka_unit_test(test_registry_not_for_json_or_metrics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
