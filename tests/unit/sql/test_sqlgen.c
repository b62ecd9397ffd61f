/* Unit tests: statement shapes, generated SQL text and bind parameters. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sql/sqlgen.h"

#define MAX_FIELDS 80

static pgs_catalog_t *test_catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 1, 0, 1);
    pgs_catalog_entity_add_column(e, "birth_date", "date", 1082, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "active", "boolean", 16, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "photo", "bytea", 17, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "updated_at", "timestamp with time zone", 1184, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "created_at", "timestamp with time zone", 1184, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "status", "clinic.appointment_status", 90001, 0, 0, 0, 0);

    /* primary key (clinic_id, visit_id, note_no); no version */
    e = pgs_catalog_add_entity(cat, "visit_notes");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "note_no", "integer", 23, 3, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "visit_id", "uuid", 2950, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "body", "text", 25, 0, 0, 0, 1);

    e = pgs_catalog_add_entity(cat, "blobs");
    pgs_catalog_entity_add_column(e, "digest", "bytea", 17, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "n", "bigint", 20, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "x", "double precision", 701, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "y", "double precision", 701, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "z", "double precision", 701, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "w", "double precision", 701, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "flag", "boolean", 16, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "m", "bigint", 20, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "note", "text", 25, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "raw", "bytea", 17, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "empty", "bytea", 17, 0, 0, 0, 0);

    e = pgs_catalog_add_entity(cat, "we\"ird's");
    pgs_catalog_entity_add_column(e, "i\"d", "integer", 23, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "col\"umn", "text", 25, 0, 0, 0, 0);
    return cat;
}

static pgs_command_t *cmd_new(const char *entity, pgs_op_t op)
{
    pgs_command_t *cmd = pgs_command_new();
    cmd->command_id = "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e5f";
    cmd->clinic_id = "c1";
    cmd->actor = "svc-test";
    cmd->entity = entity;
    cmd->op = op;
    cmd->key = pgs_arena_alloc(cmd->arena, MAX_FIELDS * sizeof(pgs_field_t));
    cmd->data = pgs_arena_alloc(cmd->arena, MAX_FIELDS * sizeof(pgs_field_t));
    return cmd;
}

static pgs_value_t *add_field(pgs_command_t *cmd, int key, const char *name)
{
    pgs_field_t *f = key ? &cmd->key[cmd->key_cnt++] : &cmd->data[cmd->data_cnt++];
    f->name = name;
    return &f->value;
}

static void add_str(pgs_command_t *cmd, int key, const char *name, const char *s)
{
    pgs_value_t *v = add_field(cmd, key, name);
    v->type = PGS_VAL_STRING;
    v->u.s.ptr = s;
    v->u.s.len = strlen(s);
}

static pgs_command_t *patient_cmd(pgs_op_t op, int nnames, const char *const *names)
{
    pgs_command_t *cmd = cmd_new("patients", op);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    for (int i = 0; i < nnames; i++)
        add_str(cmd, 0, names[i], "v");
    return cmd;
}

static void shape_for(const pgs_catalog_t *cat, pgs_command_t *cmd, pgs_shape_t *shape)
{
    char errstr[256];
    const pgs_entity_t *ent = NULL;
    pgs_err_t err = pgs_catalog_validate(cat, cmd, &ent, errstr, sizeof(errstr));
    if (err != PGS_OK)
        fail_msg("validate: %s", errstr);
    assert_int_equal(pgs_sqlgen_shape_of(ent, cmd, shape), 0);
}

/* Highest $n in @p sql, failing if some number below it is never used. */
static int max_placeholder(const char *sql)
{
    int seen[200] = {0};
    int max = 0;
    for (const char *p = strchr(sql, '$'); p; p = strchr(p + 1, '$')) {
        int n = atoi(p + 1);
        assert_true(n > 0 && n < 200);
        seen[n] = 1;
        if (n > max)
            max = n;
    }
    for (int i = 1; i <= max; i++) {
        if (!seen[i])
            fail_msg("placeholder $%d unused", i);
    }
    return max;
}

static void assert_contains(const char *sql, const char *fragment)
{
    if (!strstr(sql, fragment))
        fail_msg("missing <%s> in:\n%s", fragment, sql);
}

static void assert_lacks(const char *sql, const char *fragment)
{
    if (strstr(sql, fragment))
        fail_msg("unexpected <%s> in:\n%s", fragment, sql);
}

/* Statement text and parameters of @p cmd; checks their counts agree. */
static char *statement_for(const pgs_catalog_t *cat, pgs_command_t *cmd, pgs_params_t *params)
{
    pgs_shape_t shape;
    shape_for(cat, cmd, &shape);
    char *sql = pgs_sqlgen_statement(pgs_catalog_schema(cat), &shape);
    assert_non_null(sql);
    pgs_sqlgen_params(&shape, cmd, "clinic.commands", 3, 12345, params);
    assert_int_equal(max_placeholder(sql), params->n);
    return sql;
}

static void test_shapes(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    const char *ab[] = {"given_name", "birth_date"};
    const char *ba[] = {"birth_date", "given_name"};
    const char *ac[] = {"given_name", "active"};
    pgs_command_t *c1 = patient_cmd(PGS_OP_UPDATE, 2, ab);
    pgs_command_t *c2 = patient_cmd(PGS_OP_UPDATE, 2, ba);
    pgs_command_t *c3 = patient_cmd(PGS_OP_UPDATE, 2, ac);
    pgs_command_t *c4 = patient_cmd(PGS_OP_UPSERT, 2, ab);
    pgs_command_t *c5 = patient_cmd(PGS_OP_UPDATE, 2, ab);
    c5->has_expected_version = 1;
    pgs_command_t *c6 = patient_cmd(PGS_OP_UPDATE, 0, NULL);
    add_str(c6, 0, "birth_date", "2000-01-01");
    add_str(c6, 0, "clinic_id", "c1");
    add_str(c6, 0, "given_name", "x");

    pgs_shape_t s1, s2, s3, s4, s5, s6;
    shape_for(cat, c1, &s1);
    shape_for(cat, c2, &s2);
    shape_for(cat, c3, &s3);
    shape_for(cat, c4, &s4);
    shape_for(cat, c5, &s5);
    shape_for(cat, c6, &s6);

    assert_int_equal(s1.ncols, 2);
    assert_int_equal(s1.cols[0], 2); /* ascending column index */
    assert_int_equal(s1.cols[1], 3);
    assert_true(pgs_sqlgen_shape_equal(&s1, &s2));
    assert_true(s1.hash == s2.hash);
    assert_true(pgs_sqlgen_shape_equal(&s1, &s6)); /* a repeated clinic_id is not a column */
    assert_false(pgs_sqlgen_shape_equal(&s1, &s3));
    assert_true(s1.hash != s3.hash);
    assert_false(pgs_sqlgen_shape_equal(&s1, &s4));
    assert_true(s1.hash != s4.hash);
    assert_false(pgs_sqlgen_shape_equal(&s1, &s5));
    assert_true(s1.hash != s5.hash);

    /* unknown columns have no shape (validation rejects them first) */
    pgs_shape_t bad;
    add_str(c1, 0, "nope", "x");
    assert_int_equal(pgs_sqlgen_shape_of(pgs_catalog_find(cat, "patients"), c1, &bad), -1);

    pgs_command_free(c1);
    pgs_command_free(c2);
    pgs_command_free(c3);
    pgs_command_free(c4);
    pgs_command_free(c5);
    pgs_command_free(c6);
    pgs_catalog_free(cat);
}

/* The digest is the last parameter; a recorded id is checked against it
 * (pgscribe.expect_same_command) before it counts as a duplicate. */
static void assert_digest_check(const char *sql)
{
    char lit[256];
    int d = max_placeholder(sql);
    assert_contains(sql, "(command_id, clinic_id, topic, kafka_partition, kafka_offset, digest)");
    snprintf(lit, sizeof(lit), "VALUES ($1::uuid, $2, $3, $4::int, $5::bigint, $%d::bytea)", d);
    assert_contains(sql, lit);
    snprintf(lit, sizeof(lit),
             "seen AS (SELECT pgscribe.expect_same_command($1::uuid, $%d::bytea, NULL) AS n"
             " WHERE NOT EXISTS (SELECT 1 FROM ins)),",
             d);
    assert_contains(sql, lit);
    /* seen is read by the final SELECT, or it would never run */
    assert_contains(sql, "AS fresh FROM (SELECT count(*) FROM seen) s");
    /* the write audit is the transaction's own statement (txnaudit.c) */
    assert_lacks(sql, "audit.");
}

static void assert_common(const char *sql)
{
    assert_contains(sql, "INSERT INTO pgscribe.applied_commands");
    assert_digest_check(sql);
    assert_contains(sql, "ON CONFLICT (command_id) DO NOTHING RETURNING command_id");
    assert_lacks(sql, "write_audit");
    assert_contains(sql, "EXISTS (SELECT 1 FROM ins)");
    assert_contains(sql, "RETURNING 1)");
    assert_contains(sql, "SELECT pgscribe.expect_rows((SELECT count(*) FROM ins),"
                         " (SELECT count(*) FROM w)) AS fresh");
}

static void test_insert_sql(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    const char *cols[] = {"status", "birth_date", "given_name"};
    pgs_command_t *cmd = patient_cmd(PGS_OP_INSERT, 3, cols);
    pgs_params_t params;
    char *sql = statement_for(cat, cmd, &params);
    assert_common(sql);
    assert_contains(sql, "INSERT INTO \"clinic\".\"patients\" AS t (\"clinic_id\", \"id\", "
                         "\"given_name\", \"birth_date\", \"status\")");
    assert_contains(sql, "SELECT $2::text, $6::uuid, $7::text, $8::date, "
                         "$9::clinic.appointment_status WHERE EXISTS");
    assert_lacks(sql, "DO UPDATE");
    assert_lacks(sql, "version");
    assert_int_equal(params.n, 10);
    assert_string_equal(params.values[6], "v");
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_upsert_sql(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    const char *cols[] = {"given_name"};
    pgs_command_t *cmd = patient_cmd(PGS_OP_UPSERT, 1, cols);
    cmd->has_expected_version = 1;
    cmd->expected_version = 42;
    pgs_params_t params;
    char *sql = statement_for(cat, cmd, &params);
    assert_common(sql);
    assert_contains(sql, "ON CONFLICT (\"id\") DO UPDATE SET \"given_name\" = "
                         "EXCLUDED.\"given_name\", \"version\" = t.\"version\" + 1, "
                         "\"updated_at\" = now()");
    assert_contains(sql, "WHERE t.\"clinic_id\" = $2::text AND t.\"version\" = $8::bigint");
    assert_int_equal(params.n, 9);
    assert_string_equal(params.values[7], "42");
    free(sql);
    pgs_command_free(cmd);

    /* no data, no version: a no-op update still returns the row */
    cmd = cmd_new("visit_notes", PGS_OP_UPSERT);
    add_str(cmd, 1, "note_no", "2");
    add_str(cmd, 1, "visit_id", "0b3c0f4e-0000-4000-8000-000000000002");
    sql = statement_for(cat, cmd, &params);
    assert_contains(sql, "ON CONFLICT (\"clinic_id\", \"visit_id\", \"note_no\") DO UPDATE SET "
                         "\"clinic_id\" = EXCLUDED.\"clinic_id\"");
    assert_contains(sql, "(\"clinic_id\", \"visit_id\", \"note_no\")\n    SELECT $2::text, "
                         "$6::uuid, $7::integer WHERE");
    assert_lacks(sql, "version");
    assert_int_equal(params.n, 8);
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_update_sql(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    const char *cols[] = {"birth_date", "given_name"};
    pgs_command_t *cmd = patient_cmd(PGS_OP_UPDATE, 2, cols);
    cmd->has_expected_version = 1;
    cmd->expected_version = -1;
    pgs_params_t params;
    char *sql = statement_for(cat, cmd, &params);
    assert_common(sql);
    assert_contains(sql, "UPDATE \"clinic\".\"patients\" SET \"given_name\" = $7::text, "
                         "\"birth_date\" = $8::date, \"version\" = \"version\" + 1, "
                         "\"updated_at\" = now()");
    assert_contains(sql, "WHERE \"id\" = $6::uuid AND \"clinic_id\" = $2::text AND "
                         "\"version\" = $9::bigint AND EXISTS (SELECT 1 FROM ins)");
    assert_string_equal(params.values[8], "-1");
    free(sql);
    pgs_command_free(cmd);

    /* without expected_version, the version is still bumped but not checked */
    cmd = patient_cmd(PGS_OP_UPDATE, 1, cols);
    sql = statement_for(cat, cmd, &params);
    assert_contains(sql, "\"version\" = \"version\" + 1");
    assert_lacks(sql, "::bigint AND EXISTS");
    assert_int_equal(params.n, 8);
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_delete_sql(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = patient_cmd(PGS_OP_DELETE, 0, NULL);
    cmd->has_expected_version = 1;
    cmd->expected_version = 5;
    pgs_params_t params;
    char *sql = statement_for(cat, cmd, &params);
    assert_common(sql);
    assert_contains(sql, "DELETE FROM \"clinic\".\"patients\"\n    WHERE \"id\" = $6::uuid AND "
                         "\"clinic_id\" = $2::text AND \"version\" = $7::bigint AND EXISTS");
    assert_int_equal(params.n, 8);
    free(sql);
    pgs_command_free(cmd);

    /* key params follow the primary key's order, not the message's */
    cmd = cmd_new("visit_notes", PGS_OP_DELETE);
    add_str(cmd, 1, "note_no", "2");
    add_str(cmd, 1, "visit_id", "0b3c0f4e-0000-4000-8000-000000000002");
    sql = statement_for(cat, cmd, &params);
    assert_contains(sql, "WHERE \"visit_id\" = $6::uuid AND \"note_no\" = $7::integer AND "
                         "\"clinic_id\" = $2::text AND EXISTS");
    assert_string_equal(params.values[5], "0b3c0f4e-0000-4000-8000-000000000002");
    assert_string_equal(params.values[6], "2");
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_quoting(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = cmd_new("we\"ird's", PGS_OP_UPDATE);
    pgs_value_t *v = add_field(cmd, 1, "i\"d");
    v->type = PGS_VAL_LONG;
    v->u.l = 1;
    add_str(cmd, 0, "col\"umn", "x");
    pgs_params_t params;
    pgs_shape_t shape;
    shape_for(cat, cmd, &shape);
    char *sql = pgs_sqlgen_statement("sch\"ema", &shape);
    assert_contains(sql, "UPDATE \"sch\"\"ema\".\"we\"\"ird's\" SET \"col\"\"umn\" = $7::text");
    assert_contains(sql, "WHERE \"i\"\"d\" = $6::integer AND");
    pgs_sqlgen_params(&shape, cmd, "t", 0, 0, &params);
    assert_int_equal(max_placeholder(sql), params.n);
    assert_string_equal(pgs_sqlgen_row_key_json(cmd), "{\"i\\\"d\":1}");
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_params(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = cmd_new("blobs", PGS_OP_UPSERT);
    pgs_value_t *v = add_field(cmd, 1, "digest");
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = "\x00\x01\x02\xff";
    v->u.s.len = 4;
    v = add_field(cmd, 0, "n");
    v->type = PGS_VAL_LONG;
    v->u.l = INT64_MIN;
    v = add_field(cmd, 0, "m");
    v->type = PGS_VAL_LONG;
    v->u.l = INT64_MAX;
    v = add_field(cmd, 0, "x");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = 0.1;
    v = add_field(cmd, 0, "y");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = 0.0 / 0.0;
    v = add_field(cmd, 0, "z");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = 1.0 / 0.0;
    v = add_field(cmd, 0, "w");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = -1.0 / 0.0;
    v = add_field(cmd, 0, "flag");
    v->type = PGS_VAL_BOOL;
    v->u.b = 0;
    add_field(cmd, 0, "note")->type = PGS_VAL_NULL;
    v = add_field(cmd, 0, "raw");
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = "a\0b";
    v->u.s.len = 3;
    v = add_field(cmd, 0, "empty");
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = NULL;
    v->u.s.len = 0;

    pgs_params_t params;
    char *sql = statement_for(cat, cmd, &params);
    /* shape order = column order: n x y z w flag m note raw empty, from $7 */
    assert_int_equal(params.n, 17);
    /* the digest, last: bytea hex text */
    assert_int_equal(params.formats[16], 0);
    assert_int_equal(strlen(params.values[16]), 66);
    assert_memory_equal(params.values[16], "\\x", 2);
    assert_string_equal(params.values[PGS_PARAM_COMMAND_ID], cmd->command_id);
    assert_string_equal(params.values[PGS_PARAM_CLINIC_ID], "c1");
    assert_string_equal(params.values[PGS_PARAM_TOPIC], "clinic.commands");
    assert_string_equal(params.values[PGS_PARAM_PARTITION], "3");
    assert_string_equal(params.values[PGS_PARAM_OFFSET], "12345");
    assert_string_equal(pgs_sqlgen_row_key_json(cmd), "{\"digest\":\"AAEC/w==\"}");
    assert_int_equal(params.formats[5], 1);
    assert_int_equal(params.lengths[5], 4);
    assert_memory_equal(params.values[5], "\x00\x01\x02\xff", 4);
    assert_contains(sql, "$7::bigint, $8::double precision");
    assert_string_equal(params.values[6], "-9223372036854775808");
    assert_string_equal(params.values[7], "0.10000000000000001");
    assert_string_equal(params.values[8], "NaN");
    assert_string_equal(params.values[9], "Infinity");
    assert_string_equal(params.values[10], "-Infinity");
    assert_string_equal(params.values[11], "false");
    assert_string_equal(params.values[12], "9223372036854775807");
    assert_null(params.values[13]);
    assert_int_equal(params.formats[14], 1);
    assert_int_equal(params.lengths[14], 3);
    assert_memory_equal(params.values[14], "a\0b", 3);
    assert_non_null(params.values[15]); /* empty bytea, not NULL */
    assert_int_equal(params.lengths[15], 0);
    assert_int_equal(params.formats[15], 1);
    for (int i = 0; i < PGS_PARAM_FIXED_COUNT; i++)
        assert_int_equal(params.formats[i], 0);
    assert_int_equal(params.formats[6], 0);
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_row_key_json(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = cmd_new("visit_notes", PGS_OP_UPSERT);
    pgs_value_t *v = add_field(cmd, 1, "note_no");
    v->type = PGS_VAL_LONG;
    v->u.l = -7;
    add_str(cmd, 1, "visit_id", "a\"b\\c\n\x01");
    add_str(cmd, 1, "clinic_id", "c1");
    add_str(cmd, 0, "body", "text");
    pgs_shape_t shape;
    shape_for(cat, cmd, &shape);
    pgs_params_t params;
    pgs_sqlgen_params(&shape, cmd, "t", 0, -1, &params);
    assert_string_equal(
        pgs_sqlgen_row_key_json(cmd),
        "{\"note_no\":-7,\"visit_id\":\"a\\\"b\\\\c\\n\\u0001\",\"clinic_id\":\"c1\"}");
    assert_string_equal(params.values[PGS_PARAM_OFFSET], "-1");
    assert_string_equal(params.values[5], "a\"b\\c\n\x01"); /* strings travel as they are */
    assert_string_equal(params.values[6], "-7");
    assert_string_equal(params.values[7], "text");
    assert_int_equal(params.n, 9);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

/* Every value type in the audit row's key JSON: numbers as JSON numbers,
 * what JSON cannot hold as PostgreSQL's spelling in a string, bytes as
 * padded base64. */
static void test_row_key_json_types(void **state)
{
    (void)state;
    pgs_command_t *cmd = cmd_new("visit_notes", PGS_OP_DELETE);
    pgs_value_t *v = add_field(cmd, 1, "t");
    v->type = PGS_VAL_BOOL;
    v->u.b = 1;
    v = add_field(cmd, 1, "f");
    v->type = PGS_VAL_BOOL;
    v->u.b = 0;
    v = add_field(cmd, 1, "d");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = 0.1;
    v = add_field(cmd, 1, "nan");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = NAN;
    v = add_field(cmd, 1, "ninf");
    v->type = PGS_VAL_DOUBLE;
    v->u.d = -INFINITY;
    v = add_field(cmd, 1, "n");
    v->type = PGS_VAL_NULL;
    v = add_field(cmd, 1, "b");
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = "\0\xff";
    v->u.s.len = 2;
    v = add_field(cmd, 1, "b3");
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = "abc";
    v->u.s.len = 3;
    v = add_field(cmd, 1, "l");
    v->type = PGS_VAL_LONG;
    v->u.l = INT64_MIN;
    assert_string_equal(pgs_sqlgen_row_key_json(cmd),
                        "{\"t\":true,\"f\":false,\"d\":0.10000000000000001,\"nan\":\"NaN\","
                        "\"ninf\":\"-Infinity\",\"n\":null,\"b\":\"AP8=\",\"b3\":\"YWJj\","
                        "\"l\":-9223372036854775808}");
    pgs_command_free(cmd);
}

/* The digest parameter is the command's content: a re-send with another
 * command id, actor or position binds the same one, other data another. */
static void test_digest_param(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    const char *cols[] = {"given_name"};
    pgs_command_t *a = patient_cmd(PGS_OP_UPSERT, 1, cols);
    pgs_command_t *b = patient_cmd(PGS_OP_UPSERT, 1, cols);
    b->command_id = "00000000-0000-4000-8000-0000000000ff";
    b->actor = "someone-else";
    pgs_command_t *c = cmd_new("patients", PGS_OP_UPSERT);
    add_str(c, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    add_str(c, 0, "given_name", "w");
    pgs_params_t pa, pb, pc;
    char *sql = statement_for(cat, a, &pa);
    free(sql);
    pgs_shape_t shape;
    shape_for(cat, b, &shape);
    pgs_sqlgen_params(&shape, b, "other.topic", 7, 99, &pb);
    sql = statement_for(cat, c, &pc);
    assert_int_equal(pgs_sqlgen_digest_param(&shape), pa.n);
    const char *da = pa.values[pa.n - 1], *db = pb.values[pb.n - 1], *dc = pc.values[pc.n - 1];
    assert_string_equal(da, db);
    assert_string_not_equal(da, dc);
    assert_int_equal(pa.formats[pa.n - 1], 0);
    free(sql);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_insert_sql),
        cmocka_unit_test(test_upsert_sql),
        cmocka_unit_test(test_update_sql),
        cmocka_unit_test(test_delete_sql),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_row_key_json),
        cmocka_unit_test(test_row_key_json_types),
        cmocka_unit_test(test_digest_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
