/* Unit tests for the codec: Avro and JSON round trips, resolution, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>
#include <jansson.h>

#include "codec/codec.h"

#define UUID   "3f2b8c1e-7a4d-4e2b-9c1a-0123456789AB"
#define SECRET "SECRET-PHI-VALUE"

static pgs_codec_t *codec;

static int setup(void **state)
{
    (void)state;
    char err[256];
    codec = pgs_codec_new(err, sizeof(err));
    if (!codec)
        fprintf(stderr, "pgs_codec_new: %s\n", err);
    return codec ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pgs_codec_free(codec);
    return 0;
}

static const char bytes_val[] = {'\0', '\xff', 'x', '\x01'};

/* A command carrying every Value type in both maps. */
static pgs_command_t *sample_command(int with_version)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = UUID;
    c->clinic_id = "clinic-7";
    c->actor = "user:42";
    c->entity = "patient";
    c->op = PGS_OP_UPDATE;
    c->key_cnt = 2;
    c->key = pgs_arena_alloc(c->arena, 2 * sizeof(pgs_field_t));
    c->key[0] =
        (pgs_field_t){.name = "id", .value = {.type = PGS_VAL_LONG, .u.l = 9007199254740993LL}};
    c->key[1] =
        (pgs_field_t){.name = "site", .value = {.type = PGS_VAL_STRING, .u.s = {"north", 5}}};
    c->data_cnt = 7;
    c->data = pgs_arena_alloc(c->arena, 7 * sizeof(pgs_field_t));
    c->data[0] = (pgs_field_t){.name = "nothing", .value = {.type = PGS_VAL_NULL}};
    c->data[1] = (pgs_field_t){.name = "active", .value = {.type = PGS_VAL_BOOL, .u.b = 1}};
    c->data[2] = (pgs_field_t){.name = "visits",
                               .value = {.type = PGS_VAL_LONG, .u.l = -9000000000000000000LL}};
    c->data[3] =
        (pgs_field_t){.name = "weight", .value = {.type = PGS_VAL_DOUBLE, .u.d = 0.1 + 0.2}};
    c->data[4] = (pgs_field_t){
        .name = "name", .value = {.type = PGS_VAL_STRING, .u.s = {"J\xc3\xb6rg \xe2\x82\xac", 9}}};
    c->data[5] =
        (pgs_field_t){.name = "photo", .value = {.type = PGS_VAL_BYTES, .u.s = {bytes_val, 4}}};
    c->data[6] = (pgs_field_t){.name = "deleted", .value = {.type = PGS_VAL_BOOL, .u.b = 0}};
    c->has_expected_version = with_version;
    c->expected_version = with_version ? 17 : 0;
    c->issued_at_ms = 1700000000123LL;
    return c;
}

/* The per-clinic bytes-written series counts sizes: key 8 + 5, data
 * 0 + 1 + 8 + 8 + 9 + 4 + 1. */
static void test_value_bytes(void **state)
{
    (void)state;
    pgs_command_t *c = sample_command(0);
    assert_int_equal(pgs_command_value_bytes(c), 44);
    c->data_cnt = 0;
    assert_int_equal(pgs_command_value_bytes(c), 13);
    c->key_cnt = 0;
    assert_int_equal(pgs_command_value_bytes(c), 0);
    pgs_command_free(c);
}

static void set_str(pgs_value_t *v, const char *ptr, size_t len)
{
    v->type = PGS_VAL_STRING;
    v->u.s.ptr = ptr;
    v->u.s.len = len;
}

static const pgs_field_t *find_field(const pgs_field_t *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

static void assert_fields_equal(const pgs_field_t *a, size_t an, const pgs_field_t *b, size_t bn)
{
    assert_int_equal(an, bn);
    for (size_t i = 0; i < an; i++) {
        const pgs_field_t *o = find_field(b, bn, a[i].name);
        assert_non_null(o);
        assert_int_equal(a[i].value.type, o->value.type);
        switch (a[i].value.type) {
        case PGS_VAL_NULL:
            break;
        case PGS_VAL_BOOL:
            assert_int_equal(!!a[i].value.u.b, !!o->value.u.b);
            break;
        case PGS_VAL_LONG:
            assert_true(a[i].value.u.l == o->value.u.l);
            break;
        case PGS_VAL_DOUBLE:
            assert_memory_equal(&a[i].value.u.d, &o->value.u.d, sizeof(double));
            break;
        case PGS_VAL_STRING:
        case PGS_VAL_BYTES:
            assert_int_equal(a[i].value.u.s.len, o->value.u.s.len);
            assert_memory_equal(a[i].value.u.s.ptr, o->value.u.s.ptr, a[i].value.u.s.len);
            assert_int_equal(o->value.u.s.ptr[o->value.u.s.len], '\0');
            break;
        }
    }
}

static void assert_commands_equal(const pgs_command_t *a, const pgs_command_t *b)
{
    assert_string_equal(a->command_id, b->command_id);
    assert_string_equal(a->clinic_id, b->clinic_id);
    assert_string_equal(a->actor, b->actor);
    assert_string_equal(a->entity, b->entity);
    assert_int_equal(a->op, b->op);
    assert_fields_equal(a->key, a->key_cnt, b->key, b->key_cnt);
    assert_fields_equal(a->data, a->data_cnt, b->data, b->data_cnt);
    assert_int_equal(a->has_expected_version, b->has_expected_version);
    if (a->has_expected_version)
        assert_true(a->expected_version == b->expected_version);
    assert_true(a->issued_at_ms == b->issued_at_ms);
}

/* Decodes and asserts the error, that errstr names @p field, and that it
 * carries no value (every crafted value contains SECRET). */
static void expect_cmd_err(const void *buf, size_t len, int json, pgs_err_t want, const char *field)
{
    char err[512] = "";
    pgs_command_t *cmd = (pgs_command_t *)1;
    pgs_err_t got = pgs_codec_decode_command(codec, buf, len, json, &cmd, err, sizeof(err));
    if (got != want)
        fail_msg("want %s, got %s (%s)", pgs_error_code(want), pgs_error_code(got), err);
    assert_null(cmd);
    assert_true(err[0] != '\0');
    if (field && !strstr(err, field))
        fail_msg("errstr '%s' does not name '%s'", err, field);
    assert_null(strstr(err, SECRET));
    assert_null(strstr(err, "SECRET"));
}

static void expect_json_err(const char *json, pgs_err_t want, const char *field)
{
    expect_cmd_err(json, strlen(json), 1, want, field);
}

static char *encode(const pgs_command_t *cmd, int json, int id, size_t *len)
{
    char *buf = NULL;
    assert_int_equal(pgs_codec_encode_command(codec, cmd, json, id, &buf, len), 0);
    assert_non_null(buf);
    return buf;
}

static void test_avro_v2_roundtrip(void **state)
{
    (void)state;
    for (int with_version = 0; with_version <= 1; with_version++) {
        pgs_command_t *in = sample_command(with_version), *out = NULL;
        size_t len;
        char *buf = encode(in, 0, PGS_SCHEMA_ID_WRITE_COMMAND_V2, &len);
        assert_int_equal(buf[0], 0);
        assert_memory_equal(buf + 1, "\0\0\0\2", 4);
        char err[256];
        assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)),
                         PGS_OK);
        assert_commands_equal(in, out);
        assert_int_equal(out->has_expected_version, with_version);
        pgs_command_free(out);
        pgs_command_free(in);
        free(buf);
    }
}

static const char sample_json[] =
    "{\"command_id\":\"" UUID "\",\"clinic_id\":\"clinic-7\",\"actor\":\"user:42\","
    "\"entity\":\"patient\",\"op\":\"UPDATE\","
    "\"key\":{\"id\":9007199254740993,\"site\":\"north\"},"
    "\"data\":{\"nothing\":null,\"active\":true,\"visits\":-9000000000000000000,"
    "\"weight\":0.30000000000000004,\"name\":\"J\\u00f6rg \xe2\x82\xac\","
    "\"photo\":{\"bytes\":\"AP94AQ==\"},\"deleted\":false},"
    "\"expected_version\":17,\"issued_at\":1700000000123,\"future_field\":[1,2]}";

static void test_json_decode(void **state)
{
    (void)state;
    pgs_command_t *want = sample_command(1), *out = NULL;
    char err[256];
    assert_int_equal(pgs_codec_decode_command(codec, sample_json, strlen(sample_json), 1, &out, err,
                                              sizeof(err)),
                     PGS_OK);
    assert_commands_equal(want, out);
    pgs_command_free(out);

    /* expected_version null, absent; data absent defaults to {} */
    const char *j = "{\"command_id\":\"" UUID "\",\"clinic_id\":\"c\",\"actor\":\"a\","
                    "\"entity\":\"e\",\"op\":\"DELETE\",\"key\":{\"id\":1},"
                    "\"expected_version\":null,\"issued_at\":5}";
    assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                     PGS_OK);
    assert_int_equal(out->has_expected_version, 0);
    assert_int_equal(out->data_cnt, 0);
    assert_int_equal(out->op, PGS_OP_DELETE);
    pgs_command_free(out);
    pgs_command_free(want);
}

static void test_json_roundtrip(void **state)
{
    (void)state;
    for (int with_version = 0; with_version <= 1; with_version++) {
        pgs_command_t *in = sample_command(with_version), *out = NULL;
        size_t len;
        char *buf = encode(in, 1, 0, &len);
        assert_null(memchr(buf, '\n', len)); /* compact, one line */
        char *direct = pgs_codec_json_from_command(in);
        assert_string_equal(direct, buf);
        free(direct);
        char err[256];
        assert_int_equal(pgs_codec_decode_command(codec, buf, len, 1, &out, err, sizeof(err)),
                         PGS_OK);
        assert_commands_equal(in, out);
        pgs_command_free(out);
        pgs_command_free(in);
        free(buf);
    }
}

static void test_json_bytes_base64(void **state)
{
    (void)state;
    static const struct {
        const char *b64;
        const char *bytes;
        size_t len;
    } cases[] = {{"", "", 0},
                 {"AA==", "\0", 1},
                 {"AP8=", "\0\xff", 2},
                 {"aGVsbG8=", "hello", 5},
                 {"/+/+", "\xff\xef\xfe", 3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char j[512];
        snprintf(j, sizeof(j),
                 "{\"command_id\":\"" UUID "\",\"clinic_id\":\"c\",\"actor\":\"a\","
                 "\"entity\":\"e\",\"op\":\"INSERT\",\"key\":{\"k\":{\"bytes\":\"%s\"}},"
                 "\"issued_at\":1}",
                 cases[i].b64);
        pgs_command_t *out = NULL;
        char err[256];
        assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                         PGS_OK);
        assert_int_equal(out->key[0].value.type, PGS_VAL_BYTES);
        assert_int_equal(out->key[0].value.u.s.len, cases[i].len);
        assert_memory_equal(out->key[0].value.u.s.ptr, cases[i].bytes, cases[i].len);
        pgs_command_free(out);
    }
}

static void test_v1_writer_resolves(void **state)
{
    (void)state;
    pgs_command_t *in = sample_command(1), *out = NULL;
    size_t len;
    char *buf = encode(in, 0, PGS_SCHEMA_ID_WRITE_COMMAND_V1, &len);
    assert_memory_equal(buf + 1, "\0\0\0\1", 4);
    char err[256];
    assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    assert_int_equal(out->has_expected_version, 0); /* the v2 reader default */
    in->has_expected_version = 0;
    assert_commands_equal(in, out);
    pgs_command_free(out);
    pgs_command_free(in);
    free(buf);
}

static void test_framing_errors(void **state)
{
    (void)state;
    expect_cmd_err("", 0, 0, PGS_E_DECODE_EMPTY, NULL);
    expect_cmd_err("", 0, 1, PGS_E_DECODE_EMPTY, NULL);
    expect_cmd_err("\x01\0\0\0\2" SECRET, 5 + strlen(SECRET), 0, PGS_E_DECODE_BAD_MAGIC, NULL);
    expect_cmd_err("{\"a\":1}", 7, 0, PGS_E_DECODE_BAD_MAGIC, NULL);
    expect_cmd_err("\0", 1, 0, PGS_E_DECODE_TRUNCATED, NULL);
    expect_cmd_err("\0\0\0\2", 4, 0, PGS_E_DECODE_TRUNCATED, NULL);
    expect_cmd_err("\0\0\0\0\x63", 5, 0, PGS_E_DECODE_UNKNOWN_SCHEMA, NULL);
    expect_cmd_err("\0\0\0\0\0", 5, 0, PGS_E_DECODE_UNKNOWN_SCHEMA, NULL);
    expect_cmd_err("\0\x01\0\0\2", 5, 0, PGS_E_DECODE_UNKNOWN_SCHEMA, NULL);

    /* an AuditEvent given as a command, and the reverse */
    pgs_audit_event_t ev = {.event_id = UUID,
                            .clinic_id = "c",
                            .actor = "a",
                            .action = "READ",
                            .resource_type = "patient",
                            .resource_id = "1",
                            .outcome = "SUCCESS",
                            .occurred_at_ms = 1,
                            .source = "svc"};
    char *buf;
    size_t len;
    assert_int_equal(pgs_codec_encode_audit(codec, &ev, 0, &buf, &len), 0);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_UNKNOWN_SCHEMA, NULL);
    free(buf);
    pgs_command_t *cmd = sample_command(1);
    buf = encode(cmd, 0, 2, &len);
    pgs_audit_event_t *aout = NULL;
    char err[256];
    assert_int_equal(pgs_codec_decode_audit(codec, buf, len, 0, &aout, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
    assert_null(aout);
    char *mj = NULL;
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len, &mj, err, sizeof(err)),
                     PGS_E_DECODE_UNKNOWN_SCHEMA);
    assert_null(mj);
    free(buf);
    pgs_command_free(cmd);
}

static void test_avro_truncated_and_trailing(void **state)
{
    (void)state;
    pgs_command_t *cmd = sample_command(1);
    size_t len;
    char *buf = encode(cmd, 0, 2, &len);
    /* every cut point inside the body */
    for (size_t cut = 5; cut < len; cut++)
        expect_cmd_err(buf, cut, 0, PGS_E_DECODE_TRUNCATED, NULL);
    char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    expect_cmd_err(longer, len + 1, 0, PGS_E_DECODE_AVRO, "trailing");
    free(longer);
    free(buf);
    pgs_command_free(cmd);

    /* a string length far beyond the message (avro-c would allocate it) */
    static const char huge[] = "\0\0\0\0\2\xfe\xff\xff\xff\xff\xff\xff\x1f"
                               "ab";
    expect_cmd_err(huge, sizeof(huge) - 1, 0, PGS_E_DECODE_TRUNCATED, "command_id");
    /* a negative length, an over-long varint */
    expect_cmd_err("\0\0\0\0\2\x01xx", 8, 0, PGS_E_DECODE_AVRO, "command_id");
    expect_cmd_err("\0\0\0\0\2\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16, 0,
                   PGS_E_DECODE_AVRO, "command_id");
}

/* Byte offset of the `op` enum in a framed command whose four leading
 * strings are shorter than 64 bytes (one-byte length prefixes). */
static size_t op_offset(const pgs_command_t *c)
{
    return 5 + 1 + strlen(c->command_id) + 1 + strlen(c->clinic_id) + 1 + strlen(c->actor) + 1 +
           strlen(c->entity);
}

static void test_avro_bad_enum_and_union(void **state)
{
    (void)state;
    pgs_command_t *cmd = sample_command(0);
    size_t len;
    char *buf = encode(cmd, 0, 2, &len);
    size_t off = op_offset(cmd);
    assert_int_equal(buf[off], 2 * PGS_OP_UPDATE); /* zigzag */
    buf[off] = 8;                                  /* index 4: past DELETE */
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_BAD_OP, "op");
    buf[off] = 2 * PGS_OP_UPDATE;
    /* key map: block count 2, then "id" and its union branch index */
    assert_int_equal(buf[off + 1], 4);
    assert_memory_equal(buf + off + 2, "\x04id", 3);
    assert_int_equal(buf[off + 5], 2 * 2); /* branch long */
    buf[off + 5] = 12;                     /* branch 6 does not exist */
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_AVRO, "key");
    free(buf);
    pgs_command_free(cmd);
}

static void test_bad_utf8_and_nul(void **state)
{
    (void)state;
    /* JSON: invalid UTF-8 is refused by the parser */
    expect_json_err("{\"command_id\":\"" UUID "\",\"actor\":\"" SECRET "\xc3\x28\"}",
                    PGS_E_DECODE_BAD_UTF8, NULL);
    /* JSON: \u0000 in a value and in a key */
    const char *tmpl = "{\"command_id\":\"" UUID "\",\"clinic_id\":\"c\",\"actor\":\"a\","
                       "\"entity\":\"e\",\"op\":\"INSERT\",\"key\":{%s},\"issued_at\":1}";
    char j[512];
    snprintf(j, sizeof(j), tmpl, "\"id\":\"" SECRET "\\u0000x\"");
    expect_json_err(j, PGS_E_DECODE_NUL_BYTE, "key");
    snprintf(j, sizeof(j), tmpl, "\"i\\u0000d\":1");
    expect_json_err(j, PGS_E_DECODE_NUL_BYTE, NULL);

    /* Avro: the encoder writes what it is given; the decoder checks */
    pgs_command_t *cmd = sample_command(1);
    static const char bad_utf8[] = SECRET "\xc3\x28";
    set_str(&cmd->data[4].value, bad_utf8, sizeof(bad_utf8) - 1);
    size_t len;
    char *buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_BAD_UTF8, "data");
    free(buf);
    static const char with_nul[] = SECRET "\0after";
    set_str(&cmd->data[4].value, with_nul, sizeof(with_nul) - 1);
    buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_NUL_BYTE, "data");
    free(buf);
    /* an overlong encoding and a surrogate in an id field */
    set_str(&cmd->data[4].value, "ok", 2);
    cmd->actor = SECRET "\xc0\xaf";
    buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_BAD_UTF8, "actor");
    free(buf);
    cmd->actor = SECRET "\xed\xa0\x80";
    buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_BAD_UTF8, "actor");
    free(buf);
    pgs_command_free(cmd);
}

static void test_json_errors(void **state)
{
    (void)state;
    expect_json_err("{\"command_id\": \"" SECRET "\", ", PGS_E_DECODE_JSON_SYNTAX, NULL);
    expect_json_err("{\"a\": " SECRET "}", PGS_E_DECODE_JSON_SYNTAX, NULL);
    expect_json_err("[1,2]", PGS_E_DECODE_WRONG_TYPE, NULL);

    const char *base = "{\"command_id\":\"" UUID "\",\"clinic_id\":%s,\"actor\":\"a\","
                       "\"entity\":\"e\",\"op\":%s,\"key\":%s,\"data\":%s,"
                       "\"expected_version\":%s,\"issued_at\":%s}";
    char j[1024];
#define CMD_JSON(clinic, op, key, data, ev, at)                                                    \
    (snprintf(j, sizeof(j), base, clinic, op, key, data, ev, at), j)
    const char *c = "\"clinic-7\"", *op = "\"UPSERT\"", *key = "{\"id\":1}", *d = "{}", *ev = "3",
               *at = "1";
    pgs_command_t *out = NULL;
    char err[256];
    CMD_JSON(c, op, key, d, ev, at);
    assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                     PGS_OK);
    assert_int_equal(out->op, PGS_OP_UPSERT);
    assert_true(out->expected_version == 3);
    pgs_command_free(out);

    /* missing fields */
    expect_json_err("{\"command_id\":\"" UUID "\",\"clinic_id\":\"c\",\"entity\":\"e\","
                    "\"op\":\"INSERT\",\"key\":{\"id\":\"" SECRET "\"},\"issued_at\":1}",
                    PGS_E_DECODE_MISSING_FIELD, "actor");
    expect_json_err("{\"command_id\":\"" UUID "\",\"clinic_id\":\"c\",\"actor\":\"a\","
                    "\"entity\":\"e\",\"op\":\"INSERT\",\"key\":{\"id\":1}}",
                    PGS_E_DECODE_MISSING_FIELD, "issued_at");
    expect_json_err(CMD_JSON("\"\"", op, key, d, ev, at), PGS_E_DECODE_MISSING_FIELD, "clinic_id");
    expect_json_err(CMD_JSON(c, op, "{}", d, ev, at), PGS_E_DECODE_MISSING_FIELD, "key");

    /* wrong types */
    expect_json_err(CMD_JSON(c, op, key, d, ev, "\"" SECRET "\""), PGS_E_DECODE_WRONG_TYPE,
                    "issued_at");
    expect_json_err(CMD_JSON(c, op, key, d, ev, "1.5"), PGS_E_DECODE_WRONG_TYPE, "issued_at");
    expect_json_err(CMD_JSON("42", op, key, d, ev, at), PGS_E_DECODE_WRONG_TYPE, "clinic_id");
    expect_json_err(CMD_JSON(c, op, "[\"" SECRET "\"]", d, ev, at), PGS_E_DECODE_WRONG_TYPE, "key");
    expect_json_err(CMD_JSON(c, op, key, "{\"x\":[\"" SECRET "\"]}", ev, at),
                    PGS_E_DECODE_WRONG_TYPE, "data");
    expect_json_err(CMD_JSON(c, op, key, "{\"x\":{\"string\":\"" SECRET "\"}}", ev, at),
                    PGS_E_DECODE_WRONG_TYPE, "data");
    expect_json_err(CMD_JSON(c, op, key, d, "\"" SECRET "\"", at), PGS_E_DECODE_WRONG_TYPE,
                    "expected_version");
    expect_json_err(CMD_JSON(c, "7", key, d, ev, at), PGS_E_DECODE_WRONG_TYPE, "op");

    /* unknown op, bad uuid, bad base64 */
    expect_json_err(CMD_JSON(c, "\"" SECRET "\"", key, d, ev, at), PGS_E_DECODE_BAD_OP, "op");
    expect_json_err(CMD_JSON(c, "\"insert\"", key, d, ev, at), PGS_E_DECODE_BAD_OP, "op");
    static const char *const bad_b64[] = {
        "{\"x\":{\"bytes\":\"" SECRET "\"}}", "{\"x\":{\"bytes\":\"AP8\"}}",
        "{\"x\":{\"bytes\":\"AP9=\"}}", "{\"x\":{\"bytes\":\"A===\"}}",
        "{\"x\":{\"bytes\":\"AP 8\"}}", "{\"x\":{\"bytes\":\"AP8=AP8=\"}}",
        /* whitespace anywhere, which a lenient decoder would skip */
        "{\"x\":{\"bytes\":\" AP8=\"}}", "{\"x\":{\"bytes\":\"AP8=\\n\"}}",
        "{\"x\":{\"bytes\":\"AP8=\\t\"}}", "{\"x\":{\"bytes\":\"\\r\\nAP8=\"}}",
        "{\"x\":{\"bytes\":\"aGVs\\nbG8=\"}}",
        /* padding: missing, misplaced, excess, or with nonzero unused bits */
        "{\"x\":{\"bytes\":\"AP==\"}}", "{\"x\":{\"bytes\":\"A=P8\"}}",
        "{\"x\":{\"bytes\":\"=AP8\"}}", "{\"x\":{\"bytes\":\"AA=A\"}}",
        "{\"x\":{\"bytes\":\"====\"}}", "{\"x\":{\"bytes\":\"aGVsbG8\"}}",
        "{\"x\":{\"bytes\":\"aGVsbG8==\"}}",
        /* the URL-safe alphabet and stray characters */
        "{\"x\":{\"bytes\":\"_-_-\"}}", "{\"x\":{\"bytes\":\"AP8-\"}}",
        "{\"x\":{\"bytes\":\"AP.=\"}}"};
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++)
        expect_json_err(CMD_JSON(c, op, key, bad_b64[i], ev, at), PGS_E_DECODE_BAD_BASE64, "data");
    /* numbers beyond int64 or double: a syntax error that says so (the
     * digits may be PHI, so they are not quoted) */
    static const char *const huge[] = {"99999999999999999999", "-9223372036854775809", "1e400",
                                       "-1.5e999"};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
        expect_json_err(CMD_JSON(c, op, key, d, huge[i], at), PGS_E_DECODE_JSON_SYNTAX,
                        "number out of range");
    expect_json_err(CMD_JSON(c, op, key, d, ev, "18446744073709551616"), PGS_E_DECODE_JSON_SYNTAX,
                    "number out of range");
    CMD_JSON(c, op, key, d, "9223372036854775807", at);
    assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                     PGS_OK);
    assert_true(out->expected_version == INT64_MAX);
    pgs_command_free(out);
#undef CMD_JSON
}

/* A duplicated name is refused at every depth, whichever copy comes
 * first: with last-wins parsing, "op":"INSERT",…,"op":"DELETE" would
 * delete a row and a second clinic_id would write under another clinic. */
static void test_json_duplicate_fields(void **state)
{
    (void)state;
    const char *base = "{\"command_id\":\"" UUID "\",\"clinic_id\":%s,\"actor\":\"a\","
                       "\"entity\":\"patients\",\"op\":%s,\"key\":%s,\"data\":%s,"
                       "\"issued_at\":1%s}";
    char j[1024];
#define DUP_JSON(clinic, op, key, data, tail)                                                      \
    (snprintf(j, sizeof(j), base, clinic, op, key, data, tail), j)
    const char *c = "\"clinic-7\"", *op = "\"UPSERT\"", *key = "{\"id\":1}", *d = "{\"x\":1}";
    pgs_command_t *out = NULL;
    char err[256];
    /* the same command without a duplicate decodes */
    DUP_JSON(c, op, key, d, "");
    assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                     PGS_OK);
    pgs_command_free(out);
    /* names differing in case are two names */
    DUP_JSON(c, op, key, "{\"x\":1,\"X\":2}", "");
    assert_int_equal(pgs_codec_decode_command(codec, j, strlen(j), 1, &out, err, sizeof(err)),
                     PGS_OK);
    assert_int_equal(out->data_cnt, 2);
    pgs_command_free(out);

    /* top level: the second op, the second clinic_id (values are PHI-free
     * here but the message must not quote them either way) */
    expect_json_err(DUP_JSON(c, "\"INSERT\"", key, d, ",\"op\":\"DELETE\""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'op'");
    expect_json_err(DUP_JSON("\"" SECRET "\"", op, key, d, ",\"clinic_id\":\"" SECRET "2\""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'clinic_id'");
    /* the same name written with an escape is the same name */
    expect_json_err(DUP_JSON(c, op, key, d, ",\"\\u006fp\":\"DELETE\""),
                    PGS_E_DECODE_DUPLICATE_FIELD, NULL);
    /* an unknown top-level field given twice is refused too */
    expect_json_err(DUP_JSON(c, op, key, d, ",\"extra\":1,\"extra\":2"),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'extra'");
    /* in key, in data */
    expect_json_err(DUP_JSON(c, op, "{\"id\":\"" SECRET "\",\"id\":\"" SECRET "x\"}", d, ""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "a name in 'key' appears more than once");
    expect_json_err(DUP_JSON(c, op, key, "{\"notes\":\"" SECRET "\",\"x\":1,\"notes\":null}", ""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "a name in 'data' appears more than once");
    /* nested: inside a bytes value, and deep inside an unknown field */
    expect_json_err(DUP_JSON(c, op, key, "{\"photo\":{\"bytes\":\"AA==\",\"bytes\":\"AP8=\"}}", ""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'data'");
    expect_json_err(DUP_JSON(c, op, key, d, ",\"meta\":{\"a\":[1,{\"b\":{\"c\":1,\"c\":2}}]}"),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'meta'");
    /* a name below the key/data maps is part of a value: never quoted */
    expect_json_err(DUP_JSON(c, op, key, "{\"x\":{\"" SECRET "\":1,\"" SECRET "\":2}}", ""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'data'");
    expect_json_err(DUP_JSON(c, op, key, d, ",\"m\":{\"" SECRET "\":1,\"" SECRET "\":2}"),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'m'");
    /* a map key that is no identifier is not quoted even where names are */
    expect_json_err(DUP_JSON(c, op, key, "{\"" SECRET " x\":1,\"" SECRET " x\":2}", ""),
                    PGS_E_DECODE_DUPLICATE_FIELD, "'data'");
#undef DUP_JSON
}

/* Audit events decoded from JSON refuse duplicates the same way. */
static void test_audit_duplicate_fields(void **state)
{
    (void)state;
    const char *j = "{\"event_id\":\"0b7f4f3c-1d2e-4a5b-8c9d-aabbccddeeff\",\"clinic_id\":\"c\","
                    "\"actor\":\"a\",\"action\":\"LOGIN\",\"resource_type\":\"session\","
                    "\"resource_id\":\"\",\"outcome\":\"SUCCESS\",\"occurred_at\":1,"
                    "\"source\":\"sso\"%s}";
    static const struct {
        const char *tail, *field;
    } cases[] = {
        {"", NULL},
        {",\"clinic_id\":\"other\"", "'clinic_id'"},
        {",\"outcome\":\"DENIED\"", "'outcome'"},
        {",\"details\":{\"reason\":\"" SECRET "\",\"reason\":\"" SECRET "2\"}",
         "a name in 'details' appears"},
        {",\"details\":{\"r\":\"x\"},\"details\":{}", "'details'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024], err[256] = "";
        pgs_audit_event_t *out = (pgs_audit_event_t *)1;
        snprintf(text, sizeof(text), j, cases[i].tail);
        pgs_err_t got =
            pgs_codec_decode_audit(codec, text, strlen(text), 1, &out, err, sizeof(err));
        if (!cases[i].field) {
            assert_int_equal(got, PGS_OK);
            pgs_command_audit_free(out);
            continue;
        }
        if (got != PGS_E_DECODE_DUPLICATE_FIELD)
            fail_msg("case %zu: want DECODE_DUPLICATE_FIELD, got %s (%s)", i, pgs_error_code(got),
                     err);
        assert_null(out);
        if (!strstr(err, cases[i].field))
            fail_msg("errstr '%s' does not name %s", err, cases[i].field);
        assert_null(strstr(err, SECRET));
    }
    assert_int_equal(pgs_error_class(PGS_E_DECODE_DUPLICATE_FIELD), PGS_ECLASS_DECODE);
    assert_string_equal(pgs_error_code(PGS_E_DECODE_DUPLICATE_FIELD), "DECODE_DUPLICATE_FIELD");
}

/* content-type values are matched as MIME types: Java and HTTP-bridge
 * producers send "Content-Type: Application/JSON; charset=utf-8". */
static void test_content_type_value(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        pgs_content_t want;
    } cases[] = {
        {"application/json", PGS_CONTENT_JSON},
        {"Application/JSON", PGS_CONTENT_JSON},
        {"APPLICATION/JSON", PGS_CONTENT_JSON},
        {"application/json; charset=utf-8", PGS_CONTENT_JSON},
        {"Application/JSON;charset=UTF-8", PGS_CONTENT_JSON},
        {"  application/json ", PGS_CONTENT_JSON},
        {"application/json ; charset=\"utf-8\"", PGS_CONTENT_JSON},
        {"application/vnd.pgscribe.v1+avro", PGS_CONTENT_AVRO},
        {"Application/Vnd.PGScribe.V1+Avro; x=1", PGS_CONTENT_AVRO},
        /* wrong types: not JSON, so read as Avro */
        {"application/jsonx", PGS_CONTENT_OTHER},
        {"application/json-seq", PGS_CONTENT_OTHER},
        {"text/json", PGS_CONTENT_OTHER},
        {"application/xml", PGS_CONTENT_OTHER},
        {"application/ json", PGS_CONTENT_OTHER},
        {"application/json garbage", PGS_CONTENT_OTHER},
        {"application", PGS_CONTENT_OTHER},
        {"", PGS_CONTENT_OTHER},
        {";charset=utf-8", PGS_CONTENT_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pgs_content_t got = pgs_codec_content_type(cases[i].value, strlen(cases[i].value));
        if (got != cases[i].want)
            fail_msg("'%s': want %d, got %d", cases[i].value, cases[i].want, got);
    }
    /* the value is a byte string, not a C string: its size bounds it */
    assert_int_equal(pgs_codec_content_type("application/jsonXYZ", 16), PGS_CONTENT_JSON);
    assert_int_equal(pgs_codec_content_type("application/json\0x", 18), PGS_CONTENT_OTHER);
    assert_int_equal(pgs_codec_content_type(NULL, 0), PGS_CONTENT_NONE);
}

/* The header name is matched in any letter case; the last one wins, as
 * rd_kafka_header_get_last() would for one spelling. */
static void test_content_type_headers(void **state)
{
    (void)state;
    static const char *const names[] = {"content-type", "Content-Type", "CONTENT-TYPE",
                                        "content-Type"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, "x-trace", -1, "application/json", -1);
        rd_kafka_header_add(h, names[i], -1, "Application/JSON", -1);
        if (pgs_codec_headers_content_type(h) != PGS_CONTENT_JSON)
            fail_msg("header '%s' not read", names[i]);
        rd_kafka_headers_destroy(h);
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    assert_int_equal(pgs_codec_headers_content_type(NULL), PGS_CONTENT_NONE);
    assert_int_equal(pgs_codec_headers_content_type(h), PGS_CONTENT_NONE);
    rd_kafka_header_add(h, "content-typ", -1, "application/json", -1);
    rd_kafka_header_add(h, "content-type-x", -1, "application/json", -1);
    assert_int_equal(pgs_codec_headers_content_type(h), PGS_CONTENT_NONE);
    rd_kafka_header_add(h, "Content-Type", -1, "application/json", -1);
    rd_kafka_header_add(h, "content-type", -1, PGS_CONTENT_TYPE_AVRO, -1);
    assert_int_equal(pgs_codec_headers_content_type(h), PGS_CONTENT_AVRO);
    rd_kafka_header_add(h, "CONTENT-TYPE", -1, "text/plain", -1);
    assert_int_equal(pgs_codec_headers_content_type(h), PGS_CONTENT_OTHER);
    rd_kafka_header_add(h, "content-type", -1, NULL, 0);
    assert_int_equal(pgs_codec_headers_content_type(h), PGS_CONTENT_NONE);
    rd_kafka_headers_destroy(h);
}

/* Avro binary by hand: avro-c's encoder keeps one entry per map key, so a
 * map naming a key twice can only be written byte by byte. */
static size_t avro_long(unsigned char *p, int64_t v)
{
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t i = 0;
    for (; n >= 0x80; n >>= 7)
        p[i++] = (unsigned char)(n | 0x80);
    p[i++] = (unsigned char)n;
    return i;
}

static size_t avro_str(unsigned char *p, const char *s)
{
    size_t n = avro_long(p, (int64_t)strlen(s));
    memcpy(p + n, s, strlen(s));
    return n + strlen(s);
}

/* A v2 WriteCommand; @p key and @p data list name/string-value pairs, each
 * map in one block (NULL-ended). */
static size_t avro_command(unsigned char *buf, const char *const *key, const char *const *data)
{
    size_t n = 0;
    memcpy(buf, "\0\0\0\0\2", 5);
    n = 5;
    n += avro_str(buf + n, UUID);
    n += avro_str(buf + n, "clinic-7");
    n += avro_str(buf + n, "user:42");
    n += avro_str(buf + n, "patients");
    n += avro_long(buf + n, 0); /* INSERT */
    for (const char *const *m = key;; m = data) {
        size_t cnt = 0;
        while (m[2 * cnt])
            cnt++;
        n += avro_long(buf + n, (int64_t)cnt);
        for (size_t i = 0; i < cnt; i++) {
            n += avro_str(buf + n, m[2 * i]);
            n += avro_long(buf + n, 4); /* the union's string branch */
            n += avro_str(buf + n, m[2 * i + 1]);
        }
        if (cnt)
            n += avro_long(buf + n, 0);
        if (m == data)
            break;
    }
    n += avro_long(buf + n, 0); /* expected_version: null */
    n += avro_long(buf + n, 1700000000123LL);
    return n;
}

/* avro-c keeps the last of a repeated map key, as jansson would by default:
 * refused the same way as in JSON. */
static void test_avro_duplicate_map_keys(void **state)
{
    (void)state;
    unsigned char buf[1024];
    static const char *const key1[] = {"id", SECRET "1", NULL};
    static const char *const key2[] = {"id", SECRET "1", "id", SECRET "2", NULL};
    static const char *const data1[] = {"given_name", SECRET, NULL};
    static const char *const data2[] = {"given_name", SECRET, "notes", "x",
                                        "given_name", "Eve",  NULL};
    static const char *const data_case[] = {"given_name", SECRET, "Given_Name", "Eve", NULL};
    pgs_command_t *out = NULL;
    char err[256];
    size_t len = avro_command(buf, key1, data1);
    assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    assert_int_equal(out->key_cnt, 1);
    pgs_command_free(out);
    len = avro_command(buf, key1, data_case);
    assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    assert_int_equal(out->data_cnt, 2);
    pgs_command_free(out);
    len = avro_command(buf, key2, data1);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_DUPLICATE_FIELD, "'key'");
    len = avro_command(buf, key1, data2);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_DUPLICATE_FIELD, "'data'");
}

static void test_bad_uuid(void **state)
{
    (void)state;
    static const char *const bad[] = {SECRET,
                                      "3f2b8c1e7a4d4e2b9c1a0123456789ab",
                                      "3f2b8c1e-7a4d-4e2b-9c1a-0123456789a",
                                      "3f2b8c1e-7a4d-4e2b-9c1a-0123456789abc",
                                      "3f2b8c1e-7a4d-4e2b-9c1a_0123456789ab",
                                      "{3f2b8c1e-7a4d-4e2b-9c1a-0123456789ab}",
                                      "3g2b8c1e-7a4d-4e2b-9c1a-0123456789ab",
                                      ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pgs_command_t *cmd = sample_command(0);
        cmd->command_id = bad[i];
        size_t len;
        char *buf = encode(cmd, 0, 2, &len);
        pgs_err_t want = bad[i][0] ? PGS_E_DECODE_BAD_UUID : PGS_E_DECODE_MISSING_FIELD;
        expect_cmd_err(buf, len, 0, want, "command_id");
        free(buf);
        buf = encode(cmd, 1, 0, &len);
        expect_cmd_err(buf, len, 1, want, "command_id");
        free(buf);
        pgs_command_free(cmd);
    }
    /* lower case is as canonical as upper case */
    pgs_command_t *cmd = sample_command(0), *out = NULL;
    cmd->command_id = "3f2b8c1e-7a4d-4e2b-9c1a-0123456789ab";
    size_t len;
    char *buf = encode(cmd, 0, 2, &len);
    char err[256];
    assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    pgs_command_free(out);
    free(buf);
    pgs_command_free(cmd);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t big = PGS_MAX_STRING_BYTES + 1;
    char *s = malloc(big + 1);
    memset(s, 'S', big);
    memcpy(s, SECRET, strlen(SECRET));
    s[big] = '\0';

    /* a string value over 1 MB, Avro and JSON; exactly 1 MB is fine */
    pgs_command_t *cmd = sample_command(1), *out = NULL;
    cmd->data[4].value.u.s.ptr = s;
    cmd->data[4].value.u.s.len = big;
    size_t len;
    char *buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_TOO_LARGE, "data");
    free(buf);
    buf = encode(cmd, 1, 0, &len);
    expect_cmd_err(buf, len, 1, PGS_E_DECODE_TOO_LARGE, "data");
    free(buf);
    s[big - 1] = '\0';
    cmd->data[4].value.u.s.len = big - 1;
    buf = encode(cmd, 0, 2, &len);
    char err[256];
    assert_int_equal(pgs_codec_decode_command(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    pgs_command_free(out);
    free(buf);
    s[big - 1] = 'S';
    /* an id field and a map key over 1 MB */
    set_str(&cmd->data[4].value, "ok", 2);
    cmd->actor = s;
    buf = encode(cmd, 0, 2, &len);
    expect_cmd_err(buf, len, 0, PGS_E_DECODE_TOO_LARGE, "actor");
    free(buf);
    cmd->actor = "a";
    cmd->key[0].name = s;
    buf = encode(cmd, 1, 0, &len);
    expect_cmd_err(buf, len, 1, PGS_E_DECODE_TOO_LARGE, "key");
    free(buf);
    pgs_command_free(cmd);
    free(s);

    /* a message over 4 MB, framed and JSON */
    size_t huge = PGS_MAX_MESSAGE_BYTES + 1;
    char *m = calloc(1, huge);
    m[4] = 2;
    expect_cmd_err(m, huge, 0, PGS_E_DECODE_TOO_LARGE, NULL);
    memset(m, ' ', huge);
    m[0] = '{';
    m[huge - 1] = '}';
    expect_cmd_err(m, huge, 1, PGS_E_DECODE_TOO_LARGE, NULL);
    free(m);
}

static pgs_audit_event_t *sample_audit(void)
{
    pgs_audit_event_t *ev = pgs_command_audit_new();
    ev->event_id = "0b7f4f3c-1d2e-4a5b-8c9d-aabbccddeeff";
    ev->clinic_id = "clinic-7";
    ev->actor = "user:42";
    ev->action = "EXPORT";
    ev->resource_type = "patient";
    ev->resource_id = "9001";
    ev->outcome = "DENIED";
    ev->occurred_at_ms = 1700000000999LL;
    ev->source = "portal";
    ev->details_cnt = 2;
    ev->details = pgs_arena_alloc(ev->arena, 2 * sizeof(pgs_field_t));
    ev->details[0] = (pgs_field_t){.name = "reason",
                                   .value = {.type = PGS_VAL_STRING, .u.s = {"no consent", 10}}};
    ev->details[1] =
        (pgs_field_t){.name = "format", .value = {.type = PGS_VAL_STRING, .u.s = {"csv", 3}}};
    return ev;
}

static void assert_audits_equal(const pgs_audit_event_t *a, const pgs_audit_event_t *b)
{
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->clinic_id, b->clinic_id);
    assert_string_equal(a->actor, b->actor);
    assert_string_equal(a->action, b->action);
    assert_string_equal(a->resource_type, b->resource_type);
    assert_string_equal(a->resource_id, b->resource_id);
    assert_string_equal(a->outcome, b->outcome);
    assert_true(a->occurred_at_ms == b->occurred_at_ms);
    assert_string_equal(a->source, b->source);
    assert_fields_equal(a->details, a->details_cnt, b->details, b->details_cnt);
}

/* AuditEvent v2 (schema id 7): a disclosure with recipient, purpose and
 * description round-trips in Avro and JSON; v1 events still decode (NULL
 * v2 fields); a DISCLOSE without recipient or purpose is a validation error. */
static void test_audit_v2_disclosure(void **state)
{
    (void)state;
    pgs_audit_event_t *in = sample_audit();
    in->action = "DISCLOSE";
    in->recipient = "org:insurer-9";
    in->purpose = "PAYMENT";
    in->description = "claim summary";
    char *buf, err[256];
    size_t len;
    for (int json = 0; json <= 1; json++) {
        pgs_audit_event_t *out = NULL;
        assert_int_equal(pgs_codec_encode_audit(codec, in, json, &buf, &len), 0);
        if (!json)
            assert_memory_equal(buf, "\0\0\0\0\7", 5);
        assert_int_equal(pgs_codec_decode_audit(codec, buf, len, json, &out, err, sizeof(err)),
                         PGS_OK);
        assert_audits_equal(in, out);
        assert_string_equal(out->recipient, "org:insurer-9");
        assert_string_equal(out->purpose, "PAYMENT");
        assert_string_equal(out->description, "claim summary");
        pgs_command_audit_free(out);
        free(buf);
    }
    in->description = NULL; /* optional */
    in->purpose = NULL;     /* required for DISCLOSE */
    for (int json = 0; json <= 1; json++) {
        pgs_audit_event_t *out = NULL;
        assert_int_equal(pgs_codec_encode_audit(codec, in, json, &buf, &len), 0);
        assert_int_equal(pgs_codec_decode_audit(codec, buf, len, json, &out, err, sizeof(err)),
                         PGS_E_VALIDATE_DISCLOSURE);
        assert_null(out);
        assert_string_equal(pgs_error_class_name(pgs_error_class(PGS_E_VALIDATE_DISCLOSURE)),
                            "validate");
        free(buf);
    }
    in->action = "EXPORT"; /* v1: no v2 field, schema id 3, read with NULLs */
    in->recipient = NULL;
    pgs_audit_event_t *out = NULL;
    assert_int_equal(pgs_codec_encode_audit(codec, in, 0, &buf, &len), 0);
    assert_memory_equal(buf, "\0\0\0\0\3", 5);
    assert_int_equal(pgs_codec_decode_audit(codec, buf, len, 0, &out, err, sizeof(err)), PGS_OK);
    assert_null(out->recipient);
    assert_null(out->purpose);
    assert_null(out->description);
    pgs_command_audit_free(out);
    free(buf);
    pgs_command_audit_free(in);
}

static void test_audit_roundtrip(void **state)
{
    (void)state;
    pgs_audit_event_t *in = sample_audit();
    for (int json = 0; json <= 1; json++) {
        char *buf, err[256];
        size_t len;
        pgs_audit_event_t *out = NULL;
        assert_int_equal(pgs_codec_encode_audit(codec, in, json, &buf, &len), 0);
        if (!json)
            assert_memory_equal(buf, "\0\0\0\0\3", 5);
        assert_int_equal(pgs_codec_decode_audit(codec, buf, len, json, &out, err, sizeof(err)),
                         PGS_OK);
        assert_audits_equal(in, out);
        pgs_command_audit_free(out);
        free(buf);
    }
    /* details defaults to {}; unknown outcome; bad event id */
    const char *j = "{\"event_id\":\"0b7f4f3c-1d2e-4a5b-8c9d-aabbccddeeff\",\"clinic_id\":\"c\","
                    "\"actor\":\"a\",\"action\":\"LOGIN\",\"resource_type\":\"session\","
                    "\"resource_id\":\"\",\"outcome\":\"%s\",\"occurred_at\":1,"
                    "\"source\":\"sso\"}";
    char text[512], err[256];
    pgs_audit_event_t *out = NULL;
    snprintf(text, sizeof(text), j, "SUCCESS");
    assert_int_equal(pgs_codec_decode_audit(codec, text, strlen(text), 1, &out, err, sizeof(err)),
                     PGS_OK);
    assert_int_equal(out->details_cnt, 0);
    assert_string_equal(out->action, "LOGIN");
    pgs_command_audit_free(out);
    snprintf(text, sizeof(text), j, SECRET);
    assert_int_equal(pgs_codec_decode_audit(codec, text, strlen(text), 1, &out, err, sizeof(err)),
                     PGS_E_DECODE_WRONG_TYPE);
    assert_non_null(strstr(err, "outcome"));
    assert_null(strstr(err, SECRET));
    in->event_id = SECRET;
    char *buf;
    size_t len;
    assert_int_equal(pgs_codec_encode_audit(codec, in, 0, &buf, &len), 0);
    assert_int_equal(pgs_codec_decode_audit(codec, buf, len, 0, &out, err, sizeof(err)),
                     PGS_E_DECODE_BAD_UUID);
    assert_null(strstr(err, SECRET));
    free(buf);
    in->outcome = "MAYBE";
    assert_int_not_equal(pgs_codec_encode_audit(codec, in, 0, &buf, &len), 0);
    pgs_command_audit_free(in);
}

static void test_metrics_to_json(void **state)
{
    (void)state;
    pgs_clinic_stat_t clinics[] = {{"clinic-7", 1200, 345678, 0}, {"clinic-9", 3, 12, 2}};
    pgs_metrics_record_t m = {.worker_id = "worker-1",
                              .interval_start_ms = 1700000000000LL,
                              .interval_end_ms = 1700000010000LL,
                              .consumed = 1250,
                              .applied = 1203,
                              .duplicates = 40,
                              .retried = 5,
                              .dead_lettered = 2,
                              .failed = 2,
                              .transactions = 97,
                              .commit_p50_ms = 1.5,
                              .commit_p95_ms = 4.25,
                              .commit_p99_ms = 9.75,
                              .in_flight = 12,
                              .in_flight_transactions = 4,
                              .in_flight_limit = 5,
                              .consumer_lag = 321,
                              .breaker_state = "half-open",
                              .tenant_violations = 2,
                              .clinics = clinics,
                              .clinic_cnt = 2};
    char *buf, *text, err[256];
    size_t len;
    assert_int_equal(pgs_codec_encode_metrics(codec, &m, &buf, &len), 0);
    assert_memory_equal(buf, "\0\0\0\0\6", 5);
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len, &text, err, sizeof(err)), PGS_OK);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "worker_id")), "worker-1");
    assert_int_equal(json_integer_value(json_object_get(root, "consumed")), 1250);
    assert_int_equal(json_integer_value(json_object_get(root, "applied")), 1203);
    assert_int_equal(json_integer_value(json_object_get(root, "duplicates")), 40);
    assert_int_equal(json_integer_value(json_object_get(root, "dead_lettered")), 2);
    assert_int_equal(json_integer_value(json_object_get(root, "transactions")), 97);
    assert_int_equal(json_integer_value(json_object_get(root, "consumer_lag")), 321);
    assert_int_equal(json_integer_value(json_object_get(root, "in_flight")), 12);
    assert_int_equal(json_integer_value(json_object_get(root, "in_flight_transactions")), 4);
    assert_int_equal(json_integer_value(json_object_get(root, "in_flight_limit")), 5);
    assert_true(json_integer_value(json_object_get(root, "interval_end")) == 1700000010000LL);
    json_t *lat = json_object_get(root, "commit_latency_ms");
    assert_true(json_real_value(json_object_get(lat, "p95")) == 4.25);
    assert_string_equal(json_string_value(json_object_get(root, "breaker_state")), "half-open");
    json_t *cl = json_object_get(root, "clinics");
    assert_int_equal(json_array_size(cl), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cl, 1), "clinic_id")),
                        "clinic-9");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(cl, 0), "db_time_us")),
                     345678);
    assert_int_equal(json_integer_value(json_object_get(root, "tenant_violations")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(cl, 0), "tenant_violations")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(cl, 1), "tenant_violations")), 2);
    json_decref(root);
    free(text);
    free(buf);

    /* a NaN quantile (empty interval) renders as null; no clinics is [] */
    m.commit_p99_ms = 0.0 / 0.0;
    m.clinic_cnt = 0;
    assert_int_equal(pgs_codec_encode_metrics(codec, &m, &buf, &len), 0);
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len, &text, err, sizeof(err)), PGS_OK);
    assert_non_null(strstr(text, "\"p99\":null"));
    assert_non_null(strstr(text, "\"clinics\":[]"));
    free(text);
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len - 1, &text, err, sizeof(err)),
                     PGS_E_DECODE_TRUNCATED);
    free(buf);
}

/* A record written with an older id (4: no in-flight transactions; 5: no
 * tenant violations) is still read: workers of every version may share a
 * metrics topic. */
static void metrics_old_still_read(const char *file, char id)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/avro/%s", PGS_SOURCE_DIR, file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[8192];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    avro_schema_t schema;
    assert_int_equal(avro_schema_from_json_length(text, n, &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec, field, lat, sub;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    static const char *const longs[] = {
        "interval_start", "interval_end", "consumed",     "applied",   "duplicates",  "retried",
        "dead_lettered",  "failed",       "transactions", "in_flight", "consumer_lag"};
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
        assert_int_equal(avro_value_get_by_name(&rec, longs[i], &field, NULL), 0);
        assert_int_equal(avro_value_set_long(&field, (int64_t)i + 1), 0);
    }
    assert_int_equal(avro_value_get_by_name(&rec, "worker_id", &field, NULL), 0);
    assert_int_equal(avro_value_set_string(&field, "old-worker"), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "breaker_state", &field, NULL), 0);
    assert_int_equal(avro_value_set_string(&field, "closed"), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "commit_latency_ms", &lat, NULL), 0);
    static const char *const qs[] = {"p50", "p95", "p99"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(avro_value_get_by_name(&lat, qs[i], &sub, NULL), 0);
        assert_int_equal(avro_value_set_double(&sub, 1.0), 0);
    }
    static char buf[4096] = {0, 0, 0, 0, 0};
    buf[4] = id;
    avro_writer_t wr = avro_writer_memory(buf + 5, sizeof(buf) - 5);
    assert_int_equal(avro_value_write(wr, &rec), 0);
    size_t len = 5 + (size_t)avro_writer_tell(wr);
    avro_writer_free(wr);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);

    char *json, err[256];
    assert_int_equal(pgs_codec_metrics_to_json(codec, buf, len, &json, err, sizeof(err)), PGS_OK);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "worker_id")), "old-worker");
    assert_int_equal(json_integer_value(json_object_get(root, "applied")), 4);
    if (id == 4)
        assert_null(json_object_get(root, "in_flight_transactions"));
    else
        assert_non_null(json_object_get(root, "in_flight_transactions"));
    assert_null(json_object_get(root, "tenant_violations"));
    json_decref(root);
    free(json);
}

static void test_metrics_v1_still_read(void **state)
{
    (void)state;
    metrics_old_still_read("WorkerMetrics.v1.avsc", 4);
}

static void test_metrics_v2_still_read(void **state)
{
    (void)state;
    metrics_old_still_read("WorkerMetrics.v2.avsc", 5);
}

/* Repeated decodes reuse the codec's Avro values: under ASan/LSan this
 * shows that nothing accumulates or leaks per message. */
static void test_decode_loop(void **state)
{
    (void)state;
    pgs_command_t *in = sample_command(1);
    size_t alen, jlen;
    char *abuf = encode(in, 0, 2, &alen), *jbuf = encode(in, 1, 0, &jlen), err[256];
    for (int i = 0; i < 1000; i++) {
        pgs_command_t *out = NULL;
        int json = i & 1;
        assert_int_equal(pgs_codec_decode_command(codec, json ? jbuf : abuf, json ? jlen : alen,
                                                  json, &out, err, sizeof(err)),
                         PGS_OK);
        assert_int_equal(out->data_cnt, 7);
        pgs_command_free(out);
        if (i % 100 == 0) /* failures in between must not leave state behind */
            expect_cmd_err(abuf, alen - 3, 0, PGS_E_DECODE_TRUNCATED, NULL);
    }
    free(abuf);
    free(jbuf);
    pgs_command_free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_v2_roundtrip),
        cmocka_unit_test(test_json_decode),
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_json_bytes_base64),
        cmocka_unit_test(test_v1_writer_resolves),
        cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_avro_truncated_and_trailing),
        cmocka_unit_test(test_avro_bad_enum_and_union),
        cmocka_unit_test(test_bad_utf8_and_nul),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_duplicate_fields),
        cmocka_unit_test(test_audit_duplicate_fields),
        cmocka_unit_test(test_avro_duplicate_map_keys),
        cmocka_unit_test(test_content_type_value),
        cmocka_unit_test(test_content_type_headers),
        cmocka_unit_test(test_bad_uuid),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_audit_roundtrip),
        cmocka_unit_test(test_audit_v2_disclosure),
        cmocka_unit_test(test_metrics_to_json),
        cmocka_unit_test(test_metrics_v1_still_read),
        cmocka_unit_test(test_metrics_v2_still_read),
        cmocka_unit_test(test_decode_loop),
        cmocka_unit_test(test_value_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
