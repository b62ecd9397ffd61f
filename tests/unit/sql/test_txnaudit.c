/* Unit tests: the transaction's write audit statement and its parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "sql/txnaudit.h"

#define MAX_FIELDS 4

static pgs_catalog_t *catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "pho\"ne", "text", 25, 0, 0, 0, 1);
    return cat;
}

static pgs_command_t *cmd(pgs_op_t op, const char *cid, const char *id)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = cid;
    c->clinic_id = "clinic-001";
    c->actor = "svc-\"test";
    c->entity = "patients";
    c->op = op;
    c->issued_at_ms = 1764633600123;
    c->key = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->data = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->key[0].name = "id";
    c->key[0].value.type = PGS_VAL_STRING;
    c->key[0].value.u.s.ptr = id;
    c->key[0].value.u.s.len = strlen(id);
    c->key_cnt = 1;
    return c;
}

static void set(pgs_command_t *c, const char *name, const char *s)
{
    pgs_field_t *f = &c->data[c->data_cnt++];
    f->name = name;
    f->value.type = PGS_VAL_STRING;
    f->value.u.s.ptr = s;
    f->value.u.s.len = strlen(s);
}

static void shape(const pgs_catalog_t *cat, pgs_command_t *c, pgs_shape_t *out)
{
    const pgs_entity_t *ent = NULL;
    char err[256];
    assert_int_equal(pgs_catalog_validate(cat, c, &ent, err, sizeof(err)), PGS_OK);
    assert_int_equal(pgs_sqlgen_shape_of(ent, c, out), 0);
}

/* One call over the whole transaction; the database picks the fresh rows. */
static void test_statement(void **state)
{
    (void)state;
    const char *sql = pgs_txnaudit_statement();
    assert_non_null(strstr(sql, "SELECT audit.append_transaction_writes($1::uuid[], $2::text[], "
                                "$3::bigint[], $4::text[], $5::text[]"));
    assert_non_null(strstr(sql, "$10::text[], $11)"));
    assert_null(strstr(sql, "$12"));
}

/* Each command's fields, in transaction order: its actor, issue time, row
 * key JSON, the names of the columns it wrote (a text[] literal in an
 * element of the text[], so quoted twice), where it was read, its trace
 * (SQL NULL when untraced), entity and op. */
static void test_params(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = cmd(PGS_OP_UPDATE, "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e51",
                           "0b3c0f4e-0000-4000-8000-000000000001");
    set(a, "pho\"ne", "555");
    set(a, "given_name", "Ann");
    a->traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    pgs_command_t *b = cmd(PGS_OP_DELETE, "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e52",
                           "0b3c0f4e-0000-4000-8000-000000000002");
    pgs_shape_t sa, sb;
    shape(cat, a, &sa);
    shape(cat, b, &sb);
    pgs_txnaudit_row_t rows[2] = {{a, &sa, 3, 10}, {b, &sb, 4, 11}};
    pgs_batch_params_t p;
    pgs_txnaudit_params(rows, 2, "clinic.commands", &p);
    assert_int_equal(p.n, PGS_TXNAUDIT_NPARAMS);
    assert_string_equal(p.values[0], "{\"7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e51\","
                                     "\"7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e52\"}");
    assert_string_equal(p.values[1], "{\"svc-\\\"test\",\"svc-\\\"test\"}");
    assert_string_equal(p.values[2], "{1764633600123,1764633600123}");
    assert_string_equal(p.values[3],
                        "{\"{\\\"id\\\":\\\"0b3c0f4e-0000-4000-8000-000000000001\\\"}\","
                        "\"{\\\"id\\\":\\\"0b3c0f4e-0000-4000-8000-000000000002\\\"}\"}");
    /* columns in catalog order; a DELETE writes none */
    assert_string_equal(p.values[4], "{\"{\\\"given_name\\\",\\\"pho\\\\\\\"ne\\\"}\",\"{}\"}");
    assert_string_equal(p.values[5], "{3,4}");
    assert_string_equal(p.values[6], "{10,11}");
    assert_string_equal(p.values[7],
                        "{\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\",NULL}");
    assert_string_equal(p.values[8], "{\"patients\",\"patients\"}");
    assert_string_equal(p.values[9], "{\"UPDATE\",\"DELETE\"}");
    assert_string_equal(p.values[10], "clinic.commands");
    pgs_sqlbatch_params_free(&p);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* No command: empty arrays, which the function answers with 0. */
static void test_empty(void **state)
{
    (void)state;
    pgs_batch_params_t p;
    pgs_txnaudit_params(NULL, 0, "t", &p);
    for (int i = 0; i < 10; i++)
        assert_string_equal(p.values[i], "{}");
    pgs_sqlbatch_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
