/* Unit tests: multi-row statement shapes, SQL text and array parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"

#define MAX_FIELDS 8

static pgs_catalog_t *catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "phone", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "photo", "bytea", 17, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "tags", "text[]", 1009, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "updated_at", "timestamp with time zone", 1184, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "active", "boolean", 16, 0, 1, 1, 0);
    return cat;
}

static pgs_command_t *cmd(pgs_op_t op, const char *id)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e5f";
    c->clinic_id = "clinic-001";
    c->actor = "svc-test";
    c->entity = "patients";
    c->op = op;
    c->key = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->data = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->key[0].name = "id";
    c->key[0].value.type = PGS_VAL_STRING;
    c->key[0].value.u.s.ptr = id;
    c->key[0].value.u.s.len = strlen(id);
    c->key_cnt = 1;
    return c;
}

static void set(pgs_command_t *c, const char *name, pgs_value_type_t t, const char *s, size_t n)
{
    pgs_field_t *f = &c->data[c->data_cnt++];
    f->name = name;
    f->value.type = t;
    f->value.u.s.ptr = s;
    f->value.u.s.len = n;
}

static int bshape(const pgs_catalog_t *cat, pgs_command_t *c, pgs_bshape_t *bs)
{
    const pgs_entity_t *ent = NULL;
    char err[256];
    assert_int_equal(pgs_catalog_validate(cat, c, &ent, err, sizeof(err)), PGS_OK);
    pgs_shape_t single;
    assert_int_equal(pgs_sqlgen_shape_of(ent, c, &single), 0);
    return pgs_sqlbatch_shape_of(ent, c, &single, bs);
}

/* Partial UPDATEs of different columns share one multi-row statement (and
 * its hash, which the statement registry looks up by). */
static void test_partial_updates_share_a_shape(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_UPDATE, "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "phone", PGS_VAL_STRING, "555", 3);
    pgs_command_t *b = cmd(PGS_OP_UPDATE, "0b3c0f4e-0000-4000-8000-000000000002");
    set(b, "given_name", PGS_VAL_STRING, "Ann", 3);
    set(b, "photo", PGS_VAL_BYTES, "\x01\xff", 2);
    pgs_bshape_t sa, sb;
    assert_int_equal(bshape(cat, a, &sa), 0);
    assert_int_equal(bshape(cat, b, &sb), 0);
    assert_true(pgs_sqlbatch_shape_equal(&sa, &sb));
    assert_true(sa.shape.hash == sb.shape.hash);
    assert_int_equal(sa.mask, 1);
    char *sql = pgs_sqlbatch_statement("clinic", &sa);
    assert_non_null(strstr(sql, "unnest($3::uuid[]"));
    assert_non_null(strstr(sql, "\"phone\" = CASE WHEN f."));
    assert_non_null(strstr(sql, "\"version\" = t.\"version\" + 1"));
    assert_non_null(strstr(sql, "pgscribe.expect_all("));
    assert_null(strstr(sql, "\"tags\"")); /* array columns are never in a mask */
    free(sql);

    /* parameters: arrays of both rows, with presence flags */
    const pgs_command_t *cmds[2] = {a, b};
    int32_t parts[2] = {3, 4};
    int64_t offs[2] = {10, 11};
    pgs_batch_params_t p;
    pgs_sqlbatch_params(&sa, cmds, parts, offs, 2, "t", &p);
    assert_string_equal(p.values[0], "clinic-001");
    assert_string_equal(p.values[3], "{3,4}");
    assert_string_equal(p.values[4], "{10,11}");
    int found_phone = 0, found_photo = 0, found_mask = 0;
    for (int i = 5; i < p.n; i++) {
        found_phone |= strcmp(p.values[i], "{\"555\",NULL}") == 0;
        found_photo |= strcmp(p.values[i], "{NULL,\"\\\\x01ff\"}") == 0;
        found_mask |= strcmp(p.values[i], "{t,f}") == 0;
    }
    assert_true(found_phone && found_photo && found_mask);
    pgs_sqlbatch_params_free(&p);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* INSERTs of one table share a statement whatever columns without a DEFAULT
 * they give (absent is NULL, as leaving the column out); a column with a
 * DEFAULT is listed only in the statement of the commands that give it, so
 * an absent one keeps its DEFAULT instead of becoming NULL. */
static void test_inserts_share_a_shape_by_defaulted_columns(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "phone", PGS_VAL_STRING, "5\"5\\5", 5);
    pgs_command_t *b = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000002");
    set(b, "given_name", PGS_VAL_STRING, "Ann", 3);
    pgs_command_t *c = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000003");
    set(c, "given_name", PGS_VAL_STRING, "Bo", 2);
    c->data[c->data_cnt].name = "active";
    c->data[c->data_cnt].value.type = PGS_VAL_BOOL;
    c->data[c->data_cnt++].value.u.b = 0;
    pgs_bshape_t sa, sb, sc;
    assert_int_equal(bshape(cat, a, &sa), 0);
    assert_int_equal(bshape(cat, b, &sb), 0);
    assert_int_equal(bshape(cat, c, &sc), 0);
    assert_true(pgs_sqlbatch_shape_equal(&sa, &sb));
    assert_true(sa.shape.hash == sb.shape.hash);
    assert_false(pgs_sqlbatch_shape_equal(&sa, &sc));
    assert_int_equal(sa.mask, 1);
    char *sql = pgs_sqlbatch_statement("clinic", &sa);
    assert_non_null(strstr(sql, "INSERT INTO \"clinic\".\"patients\" AS t (\"clinic_id\", \"id\", "
                                "\"given_name\", \"phone\", \"photo\") SELECT"));
    assert_null(strstr(sql, "\"active\""));  /* its DEFAULT stays */
    assert_null(strstr(sql, "\"version\"")); /* managed, DEFAULTed */
    assert_null(strstr(sql, "\"tags\""));    /* arrays stay single */
    assert_non_null(strstr(sql, "FROM fresh f\n  RETURNING 1)"));
    /* the write audit is the transaction's own statement (txnaudit.c) */
    assert_null(strstr(sql, "audit."));
    free(sql);
    sql = pgs_sqlbatch_statement("clinic", &sc);
    assert_non_null(strstr(sql, "\"photo\", \"active\") SELECT"));
    free(sql);
    const pgs_command_t *cmds[2] = {a, b};
    int32_t part[2] = {0, 0};
    int64_t off[2] = {1, 2};
    pgs_batch_params_t p;
    pgs_sqlbatch_params(&sa, cmds, part, off, 2, "t", &p);
    /* $6 is the key; given_name, phone, photo; then their masks */
    assert_int_equal(p.n, 7 + 1 + 3 * 2);
    assert_string_equal(p.values[6], "{NULL,\"Ann\"}");
    /* quote and backslash escaped inside the array element */
    assert_string_equal(p.values[7], "{\"5\\\"5\\\\5\",NULL}");
    assert_string_equal(p.values[8], "{NULL,NULL}");
    assert_string_equal(p.values[9], "{f,t}");
    assert_string_equal(p.values[10], "{t,f}");
    assert_string_equal(p.values[11], "{f,f}");
    pgs_sqlbatch_params_free(&p);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

/* An UPSERT's conflict update sets only the columns its row's command gave:
 * the mask of the row, found in fresh by key, keeps the others. */
static void test_upsert_conflict_update_follows_the_mask(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_UPSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "phone", PGS_VAL_STRING, "555", 3);
    pgs_command_t *b = cmd(PGS_OP_UPSERT, "0b3c0f4e-0000-4000-8000-000000000002");
    set(b, "given_name", PGS_VAL_STRING, "Ann", 3);
    pgs_bshape_t sa, sb;
    assert_int_equal(bshape(cat, a, &sa), 0);
    assert_int_equal(bshape(cat, b, &sb), 0);
    assert_true(pgs_sqlbatch_shape_equal(&sa, &sb));
    char *sql = pgs_sqlbatch_statement("clinic", &sa);
    assert_non_null(strstr(sql, "ON CONFLICT (\"id\") DO UPDATE SET (\"given_name\", \"phone\", "
                                "\"photo\") = (SELECT CASE WHEN f.m0 THEN EXCLUDED.\"given_name\" "
                                "ELSE t.\"given_name\" END, CASE WHEN f.m1 THEN"));
    assert_non_null(strstr(sql, " FROM fresh f WHERE f.k0 = EXCLUDED.\"id\"), \"version\" = "
                                "t.\"version\" + 1, \"updated_at\" = now() WHERE t.\"clinic_id\""));
    free(sql);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* Versioned and unversioned UPDATEs and DELETEs of one entity share a
 * statement: a row's NULL expected version matches any version. */
static void test_versioned_and_plain_share_a_shape(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_op_t ops[2] = {PGS_OP_UPDATE, PGS_OP_DELETE};
    for (int k = 0; k < 2; k++) {
        pgs_command_t *a = cmd(ops[k], "0b3c0f4e-0000-4000-8000-000000000001");
        pgs_command_t *b = cmd(ops[k], "0b3c0f4e-0000-4000-8000-000000000002");
        if (ops[k] == PGS_OP_UPDATE) {
            set(a, "phone", PGS_VAL_STRING, "1", 1);
            set(b, "phone", PGS_VAL_STRING, "2", 1);
        }
        b->has_expected_version = 1;
        b->expected_version = 7;
        pgs_bshape_t sa, sb;
        assert_int_equal(bshape(cat, a, &sa), 0);
        assert_int_equal(bshape(cat, b, &sb), 0);
        assert_true(pgs_sqlbatch_shape_equal(&sa, &sb));
        assert_true(sa.shape.hash == sb.shape.hash);
        char *sql = pgs_sqlbatch_statement("clinic", &sa);
        assert_non_null(strstr(sql, "t.\"clinic_id\" = $1::text AND (f.ev IS NULL OR "
                                    "t.\"version\" = f.ev)"));
        free(sql);
        const pgs_command_t *cmds[2] = {a, b};
        int32_t part[2] = {0, 0};
        int64_t off[2] = {1, 2};
        pgs_batch_params_t p;
        pgs_sqlbatch_params(&sa, cmds, part, off, 2, "t", &p);
        int found = 0;
        for (int i = 5; i < p.n; i++)
            found |= strcmp(p.values[i], "{NULL,7}") == 0;
        assert_true(found);
        pgs_sqlbatch_params_free(&p);
        pgs_command_free(a);
        pgs_command_free(b);
    }
    pgs_catalog_free(cat);
}

/* Digests in a multi-row statement: the last array; the idempotency record
 * stores each row's, and a row that is not its id's fresh one (its id was
 * recorded before, or an earlier row of the batch has it) is checked by
 * pgscribe.expect_same_command against the stored or the first row's. */
static void test_digests(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "phone", PGS_VAL_STRING, "555", 3);
    pgs_command_t *b = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(b, "phone", PGS_VAL_STRING, "555", 3);
    b->actor = "another-actor"; /* not content */
    pgs_command_t *c = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(c, "phone", PGS_VAL_STRING, "556", 3);
    pgs_bshape_t bs;
    assert_int_equal(bshape(cat, a, &bs), 0);
    char *sql = pgs_sqlbatch_statement("clinic", &bs);
    /* $1 clinic, $2 topic, $3-$5 ids, partitions, offsets, $6 id, $7-$9
     * given_name, phone, photo, $10-$12 their masks, $13 digests, $14 each
     * row's clinic, checked against the transaction's */
    assert_non_null(strstr(sql, "unnest($3::uuid[], $4::int[], $5::bigint[], $6::uuid[]"));
    assert_non_null(strstr(sql, ", $12::boolean[], $13::bytea[]) WITH ORDINALITY "
                                "AS u(command_id, kpart, koff, k0,"));
    assert_non_null(strstr(sql, ", m2, digest, ord) WHERE "
                                "pgscribe.expect_clinics($14::text[], $1::text)"));
    assert_null(strstr(sql, "audit."));
    assert_non_null(strstr(sql, "kafka_offset, digest)\n  SELECT command_id, $1, $2, kpart, koff, "
                                "digest FROM input\n  ON CONFLICT (command_id) DO NOTHING"));
    assert_non_null(strstr(sql, "seen AS (SELECT pgscribe.expect_same_command(i.command_id, "
                                "i.digest, f.digest) AS n FROM input i LEFT JOIN fresh f USING "
                                "(command_id) WHERE f.ord IS DISTINCT FROM i.ord),"));
    assert_non_null(strstr(sql, "FROM (SELECT count(*) FROM seen) s"));
    assert_null(strstr(sql, "$15"));
    free(sql);
    const pgs_command_t *cmds[3] = {a, b, c};
    int32_t parts[3] = {0, 0, 0};
    int64_t offs[3] = {1, 2, 3};
    pgs_batch_params_t p;
    pgs_sqlbatch_params(&bs, cmds, parts, offs, 3, "t", &p);
    assert_int_equal(p.n, 14);
    assert_string_equal(p.values[13], "{\"clinic-001\",\"clinic-001\",\"clinic-001\"}");
    const char *d = p.values[12];
    /* {"\\x<64>",...}: 3 elements of 69 characters, 2 commas, 2 braces */
    assert_int_equal(strlen(d), 3 * 69 + 4);
    assert_memory_equal(d, "{\"\\\\x", 5);
    assert_memory_equal(d + 1, d + 71, 69);      /* a and b: same content */
    assert_memory_not_equal(d + 1, d + 141, 69); /* c: other data */
    pgs_sqlbatch_params_free(&p);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

/* Array elements: quoted, with every double quote and backslash escaped,
 * wherever they stand (first, last, in a row) and nothing else changed. */
static void test_put_element_escapes(void **state)
{
    (void)state;
#define CASE(in, out)                                                                              \
    {                                                                                              \
        in, sizeof(in) - 1, out, sizeof(out) - 1                                                   \
    }
    static const struct {
        const char *in;
        size_t len;
        const char *out;
        size_t out_len;
    } cases[] = {
        CASE("", "\"\""),
        CASE("plain", "\"plain\""),
        CASE("\"", "\"\\\"\""),
        CASE("\\", "\"\\\\\""),
        CASE("a\"b\\", "\"a\\\"b\\\\\""),
        CASE("\"\"\\x", "\"\\\"\\\"\\\\x\""),
        CASE("nul\0in", "\"nul\0in\""),
    };
#undef CASE
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pgs_sbuf_t sb = {0};
        pgs_sbuf_puts(&sb, "{");
        pgs_sqlbatch_put_element(&sb, cases[i].in, cases[i].len);
        assert_int_equal(sb.len, 1 + cases[i].out_len);
        assert_memory_equal(sb.buf + 1, cases[i].out, cases[i].out_len);
        assert_int_equal(sb.buf[sb.len], '\0');
        free(sb.buf);
    }
}

/* A versioned UPSERT's conflict update applies only where the row's
 * version is the one its command expects, looked up by key in fresh;
 * commands touching an array-typed column stay single. */
static void test_versioned_upsert_multi_and_arrays_stay_single(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_UPSERT, "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "phone", PGS_VAL_STRING, "1", 1);
    a->has_expected_version = 1;
    a->expected_version = 3;
    pgs_bshape_t bs, plain;
    assert_int_equal(bshape(cat, a, &bs), 0);
    a->has_expected_version = 0;
    assert_int_equal(bshape(cat, a, &plain), 0);
    /* one statement for both: an unversioned row's expected version is NULL */
    assert_true(pgs_sqlbatch_shape_equal(&bs, &plain));
    assert_true(bs.shape.hash == plain.shape.hash);
    char *sql = pgs_sqlbatch_statement("clinic", &bs);
    assert_non_null(strstr(sql, ", $13::bigint[], $14::bytea[]"));
    assert_non_null(strstr(sql,
                           " WHERE t.\"clinic_id\" = EXCLUDED.\"clinic_id\" AND (SELECT f.ev IS "
                           "NULL OR t.\"version\" = f.ev FROM fresh f WHERE f.k0 = "
                           "EXCLUDED.\"id\")"));
    free(sql);
    a->has_expected_version = 1;
    pgs_command_t *u = cmd(PGS_OP_UPSERT, "0b3c0f4e-0000-4000-8000-000000000003");
    set(u, "phone", PGS_VAL_STRING, "2", 1);
    const pgs_command_t *cmds[2] = {a, u};
    int32_t part[2] = {0, 0};
    int64_t off[2] = {1, 2};
    pgs_batch_params_t p;
    pgs_sqlbatch_params(&bs, cmds, part, off, 2, "t", &p);
    assert_string_equal(p.values[12], "{3,NULL}");
    pgs_sqlbatch_params_free(&p);
    pgs_command_free(u);
    pgs_command_t *b = cmd(PGS_OP_INSERT, "0b3c0f4e-0000-4000-8000-000000000002");
    set(b, "tags", PGS_VAL_STRING, "{a,b}", 5);
    assert_int_equal(bshape(cat, b, &bs), -1);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* Array literals of numbers, and of no element at all. */
static void test_number_arrays(void **state)
{
    (void)state;
    static const int32_t parts[] = {0, -1, 2147483647};
    static const int64_t offs[] = {INT64_MIN, 0, 42};
    char *s = pgs_sqlbatch_array_int32(parts, 3);
    assert_string_equal(s, "{0,-1,2147483647}");
    free(s);
    s = pgs_sqlbatch_array_int64(offs, 3);
    assert_string_equal(s, "{-9223372036854775808,0,42}");
    free(s);
    s = pgs_sqlbatch_array_int64(NULL, 0);
    assert_string_equal(s, "{}");
    free(s);
    pgs_sbuf_t sb = {0};
    s = pgs_sqlbatch_array_close(&sb);
    assert_string_equal(s, "{}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_updates_share_a_shape),
        cmocka_unit_test(test_inserts_share_a_shape_by_defaulted_columns),
        cmocka_unit_test(test_upsert_conflict_update_follows_the_mask),
        cmocka_unit_test(test_versioned_upsert_multi_and_arrays_stay_single),
        cmocka_unit_test(test_versioned_and_plain_share_a_shape),
        cmocka_unit_test(test_number_arrays),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_put_element_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
