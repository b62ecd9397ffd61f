/* Unit tests for the direct WriteCommand reader (codec_direct.c): every
 * command it reads equals avro-c's reading of the same bytes, generated,
 * mutated and from writer schemas with fields the reader lacks; writer
 * schemas it cannot express get no plan and are still read by avro-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec_internal.h"
#include "command/loadgen.h"

static pgs_codec_t *direct, *generic;

static int resolve(void *opaque, int32_t id, const char **schema, char *errstr, size_t size);

static int setup(void **state)
{
    (void)state;
    char err[256];
    direct = pgs_codec_new(err, sizeof(err));
    generic = pgs_codec_new(err, sizeof(err));
    if (!direct || !generic)
        return -1;
    pgs_codec_read_with_avro_c(generic, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgs_codec_free(direct);
    pgs_codec_free(generic);
    return 0;
}

static void assert_fields_equal(const pgs_field_t *a, size_t na, const pgs_field_t *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_int_equal(a[i].value.type, b[i].value.type);
        switch (a[i].value.type) {
        case PGS_VAL_BOOL:
            assert_int_equal(a[i].value.u.b, b[i].value.u.b);
            break;
        case PGS_VAL_LONG:
            assert_true(a[i].value.u.l == b[i].value.u.l);
            break;
        case PGS_VAL_DOUBLE: /* bit for bit: NaN payloads and -0 too */
            assert_memory_equal(&a[i].value.u.d, &b[i].value.u.d, sizeof(double));
            break;
        case PGS_VAL_STRING:
        case PGS_VAL_BYTES:
            assert_int_equal(a[i].value.u.s.len, b[i].value.u.s.len);
            if (a[i].value.u.s.len)
                assert_memory_equal(a[i].value.u.s.ptr, b[i].value.u.s.ptr, a[i].value.u.s.len);
            assert_int_equal(b[i].value.u.s.ptr[b[i].value.u.s.len], '\0');
            break;
        default:
            break;
        }
    }
}

static void assert_same_command(const pgs_command_t *a, const pgs_command_t *b)
{
    assert_string_equal(a->command_id, b->command_id);
    assert_string_equal(a->clinic_id, b->clinic_id);
    assert_string_equal(a->actor, b->actor);
    assert_string_equal(a->entity, b->entity);
    assert_int_equal(a->op, b->op);
    assert_fields_equal(a->key, a->key_cnt, b->key, b->key_cnt);
    assert_fields_equal(a->data, a->data_cnt, b->data, b->data_cnt);
    assert_int_equal(a->has_expected_version, b->has_expected_version);
    assert_true(a->expected_version == b->expected_version);
    assert_true(a->issued_at_ms == b->issued_at_ms);
}

/* Both readers on the same bytes: the same outcome, the same command. */
static int both_read(const char *buf, size_t len)
{
    char e1[256] = "", e2[256] = "";
    pgs_command_t *a = NULL, *b = NULL;
    pgs_err_t ra = pgs_codec_decode_command(direct, buf, len, 0, &a, e1, sizeof(e1));
    pgs_err_t rb = pgs_codec_decode_command(generic, buf, len, 0, &b, e2, sizeof(e2));
    if (ra != rb)
        fail_msg("direct %s (%s), avro-c %s (%s)", pgs_error_code(ra), e1, pgs_error_code(rb), e2);
    if (ra == PGS_OK)
        assert_same_command(b, a);
    pgs_command_free(a);
    pgs_command_free(b);
    return ra == PGS_OK;
}

static void test_generated_commands_read_alike(void **state)
{
    (void)state;
    pgs_loadgen_opts_t opts;
    pgs_loadgen_opts_default(&opts);
    opts.photo_ratio = 0.3; /* bytes values */
    pgs_loadgen_t *lg = pgs_loadgen_new(11, 20, &opts);
    int read = 0, with_version = 0;
    for (int i = 0; i < 20000; i++) {
        pgs_command_t *cmd = pgs_loadgen_next(lg);
        int id = i % 10 == 0 ? PGS_SCHEMA_ID_WRITE_COMMAND_V1 : PGS_SCHEMA_ID_WRITE_COMMAND_V2;
        char *buf = NULL;
        size_t len;
        assert_int_equal(pgs_codec_encode_command(direct, cmd, 0, id, &buf, &len), 0);
        read += both_read(buf, len);
        with_version += cmd->has_expected_version && id == PGS_SCHEMA_ID_WRITE_COMMAND_V2;
        free(buf);
        pgs_command_free(cmd);
    }
    pgs_loadgen_free(lg);
    assert_int_equal(read, 20000);
    assert_true(with_version > 1000);
}

/* Random byte changes that still pass the scan must read alike too; those
 * the scan refuses are refused by both with one code. */
static void test_mutated_commands_read_alike(void **state)
{
    (void)state;
    pgs_loadgen_t *lg = pgs_loadgen_new(5, 3, NULL);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int ok = 0, refused = 0;
    for (int i = 0; i < 300; i++) {
        pgs_command_t *cmd = pgs_loadgen_next(lg);
        char *buf = NULL;
        size_t len;
        assert_int_equal(pgs_codec_encode_command(direct, cmd, 0, 2, &buf, &len), 0);
        pgs_command_free(cmd);
        for (int m = 0; m < 60; m++) {
            char *copy = malloc(len);
            memcpy(copy, buf, len);
            for (int k = 0; k < 1 + m % 3; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t at = 5 + (size_t)(x % (len - 5));
                copy[at] = (char)(m & 1 ? copy[at] ^ (1 << (x >> 60) % 8) : (char)(x >> 56));
            }
            if (both_read(copy, len))
                ok++;
            else
                refused++;
            free(copy);
        }
        free(buf);
    }
    pgs_loadgen_free(lg);
    assert_true(ok > 1000 && refused > 1000); /* both kinds were met */
}

/* A newer writer with fields the reader lacks, of every Avro type, before,
 * between and after the reader's fields. */
static const char wide_schema[] =
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"trace\",\"type\":{\"type\":\"record\",\"name\":\"Trace\",\"fields\":["
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":3}},"
    "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"n\",\"type\":\"null\"}]}},"
    "{\"name\":\"command_id\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
    "{\"name\":\"clinic_id\",\"type\":\"string\"},{\"name\":\"actor\",\"type\":\"string\"},"
    "{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"level\",\"type\":{\"type\":\"enum\",\"name\":\"L\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"labels\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"}},"
    "{\"name\":\"data\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]},\"default\":{}},"
    "{\"name\":\"expected_version\",\"type\":[\"null\",\"long\"],\"default\":null},"
    "{\"name\":\"issued_at\",\"type\":\"long\"},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

/* WriteCommand shapes the plan does not take: avro-c reads them. */
static const char *const unplanned[] = {
    /* issued_at an int (avro-c promotes it) */
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"actor\",\"type\":\"string\"},{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"issued_at\",\"type\":\"int\"}]}",
    /* the Op symbols in another order */
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"actor\",\"type\":\"string\"},{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"UPSERT\",\"INSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"issued_at\",\"type\":\"long\"}]}",
    /* key values of one type only */
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"actor\",\"type\":\"string\"},{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
    "{\"name\":\"issued_at\",\"type\":\"long\"}]}",
    /* no actor */
    "{\"type\":\"record\",\"name\":\"WriteCommand\",\"namespace\":\"pgscribe.v1\",\"fields\":["
    "{\"name\":\"command_id\",\"type\":\"string\"},{\"name\":\"clinic_id\",\"type\":\"string\"},"
    "{\"name\":\"entity\",\"type\":\"string\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\",\"symbols\":"
    "[\"INSERT\",\"UPSERT\",\"UPDATE\",\"DELETE\"]}},"
    "{\"name\":\"key\",\"type\":{\"type\":\"map\",\"values\":"
    "[\"null\",\"boolean\",\"long\",\"double\",\"string\",\"bytes\"]}},"
    "{\"name\":\"issued_at\",\"type\":\"long\"}]}",
};

static int resolve(void *opaque, int32_t id, const char **schema, char *errstr, size_t size)
{
    (void)opaque, (void)errstr, (void)size;
    if (id == 60)
        *schema = wide_schema;
    else if (id >= 61 && id < 61 + (int)(sizeof(unplanned) / sizeof(unplanned[0])))
        *schema = unplanned[id - 61];
    else
        return 1;
    return 0;
}

static avro_schema_t parse(const char *json)
{
    avro_schema_t s = NULL;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &s), 0);
    return s;
}

static void test_plans_of_writer_schemas(void **state)
{
    (void)state;
    for (int id = 1; id <= 2; id++) {
        avro_schema_t s = parse(pgs_codec_schema_text(id));
        pgs_codec_plan_t *p = pgs_codec_plan_command(s);
        assert_non_null(p);
        pgs_codec_plan_free(p);
        avro_schema_decref(s);
    }
    avro_schema_t wide = parse(wide_schema);
    pgs_codec_plan_t *p = pgs_codec_plan_command(wide);
    assert_non_null(p);
    pgs_codec_plan_free(p);
    avro_schema_decref(wide);
    for (size_t i = 0; i < sizeof(unplanned) / sizeof(unplanned[0]); i++) {
        avro_schema_t s = parse(unplanned[i]);
        assert_null(pgs_codec_plan_command(s));
        avro_schema_decref(s);
    }
    avro_schema_t audit = parse(pgs_codec_schema_text(PGS_SCHEMA_ID_AUDIT_EVENT_V2));
    assert_null(pgs_codec_plan_command(audit));
    avro_schema_decref(audit);
}

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    assert_int_equal(avro_value_get_by_name(rec, name, &f, NULL), 0);
    assert_int_equal(avro_value_set_string(&f, s), 0);
}

/* A message of the wide writer, framed with registry id 60. */
static char *wide_message(size_t *len, int64_t version)
{
    avro_schema_t s = parse(wide_schema);
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    avro_value_t rec, f, g, e, b;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    assert_int_equal(avro_value_get_by_name(&rec, "trace", &f, NULL), 0);
    avro_value_get_by_name(&f, "f", &g, NULL), avro_value_set_float(&g, 1.5f);
    avro_value_get_by_name(&f, "d", &g, NULL), avro_value_set_double(&g, -2.25);
    avro_value_get_by_name(&f, "x", &g, NULL), avro_value_set_fixed(&g, (void *)"abc", 3);
    avro_value_get_by_name(&f, "b", &g, NULL), avro_value_set_boolean(&g, 1);
    set_str(&rec, "command_id", "3f2b8c1e-7a4d-4e2b-9c1a-0123456789ab");
    avro_value_get_by_name(&rec, "tags", &f, NULL);
    for (int i = 0; i < 5; i++)
        avro_value_append(&f, &e, NULL), avro_value_set_int(&e, i * 1000);
    set_str(&rec, "clinic_id", "clinic-9");
    set_str(&rec, "actor", "svc-intake");
    set_str(&rec, "entity", "patients");
    avro_value_get_by_name(&rec, "op", &f, NULL), avro_value_set_enum(&f, PGS_OP_UPDATE);
    avro_value_get_by_name(&rec, "level", &f, NULL), avro_value_set_enum(&f, 1);
    avro_value_get_by_name(&rec, "key", &f, NULL);
    avro_value_add(&f, "id", &e, NULL, NULL);
    avro_value_set_branch(&e, PGS_VAL_STRING, &b), avro_value_set_string(&b, "p-1");
    avro_value_get_by_name(&rec, "labels", &f, NULL);
    avro_value_add(&f, "a", &e, NULL, NULL), avro_value_set_bytes(&e, (void *)"\0\1", 2);
    avro_value_add(&f, "b", &e, NULL, NULL), avro_value_set_bytes(&e, (void *)"", 0);
    avro_value_get_by_name(&rec, "data", &f, NULL);
    avro_value_add(&f, "weight", &e, NULL, NULL);
    avro_value_set_branch(&e, PGS_VAL_DOUBLE, &b), avro_value_set_double(&b, 71.25);
    avro_value_add(&f, "active", &e, NULL, NULL);
    avro_value_set_branch(&e, PGS_VAL_BOOL, &b), avro_value_set_boolean(&b, 0);
    avro_value_add(&f, "photo", &e, NULL, NULL);
    avro_value_set_branch(&e, PGS_VAL_BYTES, &b), avro_value_set_bytes(&b, (void *)"\xff\0", 2);
    avro_value_add(&f, "notes", &e, NULL, NULL);
    avro_value_set_branch(&e, PGS_VAL_NULL, &b), avro_value_set_null(&b);
    avro_value_get_by_name(&rec, "expected_version", &f, NULL);
    if (version >= 0)
        avro_value_set_branch(&f, 1, &b), avro_value_set_long(&b, version);
    else
        avro_value_set_branch(&f, 0, &b), avro_value_set_null(&b);
    avro_value_get_by_name(&rec, "issued_at", &f, NULL), avro_value_set_long(&f, 1700000000999LL);
    avro_value_get_by_name(&rec, "note", &f, NULL);
    avro_value_set_branch(&f, 1, &b), avro_value_set_string(&b, "from a newer writer");
    static char body[4096];
    avro_writer_t w = avro_writer_memory(body, sizeof(body));
    assert_int_equal(avro_value_write(w, &rec), 0);
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
    char *buf = malloc(5 + n);
    buf[0] = 0;
    pgs_codec_set_frame_id(buf, 5, 60);
    memcpy(buf + 5, body, n);
    *len = 5 + n;
    return buf;
}

static void test_newer_writer_read_alike(void **state)
{
    (void)state;
    pgs_codec_set_resolver(direct, resolve, NULL);
    pgs_codec_set_resolver(generic, resolve, NULL);
    for (int64_t v = -1; v <= 4; v += 5) {
        size_t len;
        char *buf = wide_message(&len, v);
        assert_true(both_read(buf, len));
        char err[256];
        pgs_command_t *cmd = NULL;
        assert_int_equal(pgs_codec_decode_command(direct, buf, len, 0, &cmd, err, sizeof(err)), 0);
        assert_string_equal(cmd->clinic_id, "clinic-9");
        assert_int_equal(cmd->data_cnt, 4);
        assert_int_equal(cmd->has_expected_version, v >= 0);
        pgs_command_free(cmd);
        /* every cut of it is refused alike */
        for (size_t cut = 5; cut < len; cut++)
            assert_false(both_read(buf, cut));
        free(buf);
    }
    pgs_codec_set_resolver(direct, NULL, NULL);
    pgs_codec_set_resolver(generic, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans_of_writer_schemas),
        cmocka_unit_test(test_generated_commands_read_alike),
        cmocka_unit_test(test_mutated_commands_read_alike),
        cmocka_unit_test(test_newer_writer_read_alike),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
