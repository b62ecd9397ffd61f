/* Unit tests: catalog model and command validation against it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"

#define SECRET     "SECRET-PHI-VALUE"
#define MAX_FIELDS 80

/* A patients-like entity, a versionless one with a composite key that
 * includes clinic_id, and a few entities added out of order. */
static pgs_catalog_t *test_catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "zebra");
    pgs_catalog_entity_add_column(e, "id", "bigint", 20, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);

    e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 1, 0, 1);
    pgs_catalog_entity_add_column(e, "birth_date", "date", 1082, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "active", "boolean", 16, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "photo", "bytea", 17, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "updated_at", "timestamp with time zone", 1184, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "created_at", "timestamp with time zone", 1184, 0, 1, 1, 0);

    /* primary key (clinic_id, visit_id, note_no), columns in another order */
    e = pgs_catalog_add_entity(cat, "visit_notes");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "note_no", "integer", 23, 3, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "visit_id", "uuid", 2950, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "body", "text", 25, 0, 1, 0, 1);
    pgs_catalog_entity_add_column(e, "version", "text", 25, 0, 0, 0, 0); /* not an integer */

    e = pgs_catalog_add_entity(cat, "appointments");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
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
    f->name = pgs_arena_strdup(cmd->arena, name);
    return &f->value;
}

static void add_str(pgs_command_t *cmd, int key, const char *name, const char *s)
{
    pgs_value_t *v = add_field(cmd, key, name);
    v->type = PGS_VAL_STRING;
    v->u.s.ptr = pgs_arena_strdup(cmd->arena, s);
    v->u.s.len = strlen(s);
}

static void add_null(pgs_command_t *cmd, int key, const char *name)
{
    add_field(cmd, key, name)->type = PGS_VAL_NULL;
}

static void add_bool(pgs_command_t *cmd, int key, const char *name, int b)
{
    pgs_value_t *v = add_field(cmd, key, name);
    v->type = PGS_VAL_BOOL;
    v->u.b = b;
}

static void add_bytes(pgs_command_t *cmd, int key, const char *name, const char *s)
{
    pgs_value_t *v = add_field(cmd, key, name);
    v->type = PGS_VAL_BYTES;
    v->u.s.ptr = pgs_arena_strdup(cmd->arena, s);
    v->u.s.len = strlen(s);
}

/* A valid patients command of op @p op, values carrying the secret. */
static pgs_command_t *patient_cmd(pgs_op_t op)
{
    pgs_command_t *cmd = cmd_new("patients", op);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    if (op != PGS_OP_DELETE)
        add_str(cmd, 0, "given_name", SECRET);
    return cmd;
}

/* Validates, checks the code, and that errstr names @p mention (if any)
 * but never a value. */
static void expect_err(const pgs_catalog_t *cat, pgs_command_t *cmd, pgs_err_t want,
                       const char *mention)
{
    char errstr[256] = "";
    const pgs_entity_t *ent = NULL;
    pgs_err_t err = pgs_catalog_validate(cat, cmd, &ent, errstr, sizeof(errstr));
    if (err != want)
        fail_msg("want %s, got %s (%s)", pgs_error_code(want), pgs_error_code(err), errstr);
    if (want == PGS_OK) {
        assert_non_null(ent);
        assert_string_equal(ent->name, cmd->entity);
    } else {
        assert_true(errstr[0] != '\0');
        assert_null(strstr(errstr, SECRET));
        assert_null(strstr(errstr, "SECRET"));
        if (mention)
            assert_non_null(strstr(errstr, mention));
    }
    pgs_command_free(cmd);
}

static void test_model(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    assert_string_equal(pgs_catalog_schema(cat), "clinic");
    assert_int_equal(pgs_catalog_entity_count(cat), 4);
    const char *sorted[] = {"appointments", "patients", "visit_notes", "zebra"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(pgs_catalog_entity_at(cat, i)->name, sorted[i]);
        assert_ptr_equal(pgs_catalog_find(cat, sorted[i]), pgs_catalog_entity_at(cat, i));
    }
    assert_null(pgs_catalog_entity_at(cat, 4));
    assert_null(pgs_catalog_find(cat, "Patients"));
    assert_null(pgs_catalog_find(cat, "aaa"));
    assert_null(pgs_catalog_find(cat, "zzz"));
    assert_null(pgs_catalog_add_entity(cat, "patients"));

    const pgs_entity_t *p = pgs_catalog_find(cat, "patients");
    assert_int_equal(p->ncols, 9);
    assert_int_equal(p->npk, 1);
    assert_int_equal(p->pk[0], 0);
    assert_int_equal(p->clinic_col, 1);
    assert_int_equal(p->version_col, 6);
    assert_int_equal(p->updated_at_col, 7);
    assert_int_equal(pgs_catalog_entity_column(p, "photo"), 5);
    assert_int_equal(pgs_catalog_entity_column(p, "nope"), -1);
    assert_string_equal(p->cols[3].type_sql, "date");
    assert_true(p->cols[2].is_phi);

    const pgs_entity_t *v = pgs_catalog_find(cat, "visit_notes");
    assert_int_equal(v->npk, 2); /* clinic_id excluded */
    assert_string_equal(v->cols[v->pk[0]].name, "visit_id");
    assert_string_equal(v->cols[v->pk[1]].name, "note_no");
    assert_int_equal(v->clinic_col, 0);
    assert_true(v->cols[v->clinic_col].is_pk);
    assert_int_equal(v->version_col, -1);
    assert_int_equal(v->updated_at_col, -1);
    pgs_catalog_free(cat);
}

static void test_valid_commands(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    expect_err(cat, patient_cmd(PGS_OP_INSERT), PGS_OK, NULL);
    expect_err(cat, patient_cmd(PGS_OP_UPSERT), PGS_OK, NULL);
    expect_err(cat, patient_cmd(PGS_OP_UPDATE), PGS_OK, NULL);
    expect_err(cat, patient_cmd(PGS_OP_DELETE), PGS_OK, NULL);

    pgs_command_t *cmd = patient_cmd(PGS_OP_INSERT);
    add_str(cmd, 0, "birth_date", "1980-02-29");
    add_null(cmd, 0, "photo");
    add_bool(cmd, 0, "active", 1);
    add_str(cmd, 0, "clinic_id", "c1"); /* repeat of the command's: ignored */
    add_str(cmd, 1, "clinic_id", "c1");
    expect_err(cat, cmd, PGS_OK, NULL);

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_bytes(cmd, 0, "photo", "\x89PNG");
    cmd->has_expected_version = 1;
    cmd->expected_version = 3;
    expect_err(cat, cmd, PGS_OK, NULL);

    cmd = cmd_new("visit_notes", PGS_OP_UPSERT);
    add_str(cmd, 1, "note_no", "2");
    add_str(cmd, 1, "visit_id", "0b3c0f4e-0000-4000-8000-000000000002");
    add_str(cmd, 0, "body", SECRET);
    add_bool(cmd, 0, "version", 0); /* a text column named version is not reserved */
    expect_err(cat, cmd, PGS_OK, NULL);

    /* DELETE may repeat the clinic in data */
    cmd = patient_cmd(PGS_OP_DELETE);
    add_str(cmd, 0, "clinic_id", "c1");
    expect_err(cat, cmd, PGS_OK, NULL);

    /* validate without asking for the entity */
    cmd = patient_cmd(PGS_OP_INSERT);
    char errstr[128];
    assert_int_equal(pgs_catalog_validate(cat, cmd, NULL, errstr, sizeof(errstr)), PGS_OK);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

static void test_unknown_entity(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = patient_cmd(PGS_OP_INSERT);
    cmd->entity = "pg_authid";
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_ENTITY, "(unknown name, 9 bytes, digest ");
    pgs_catalog_free(cat);
}

/* Names that are not catalog names may be values in the wrong place: only
 * their length and a digest are told, never the name. */
static void test_hostile_names_not_echoed(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = patient_cmd(PGS_OP_INSERT);
    cmd->entity = "patients; DROP TABLE x; -- SECRET";
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_ENTITY, "(unknown name, 33 bytes, digest ");
    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "Jane Doe SECRET 1970-01-01", "x");
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_COLUMN, "(unknown name, 26 bytes, digest ");
    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "Ada_Lovelace_SECRET", "x");
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_COLUMN, "(unknown name, 19 bytes, digest ");
    pgs_catalog_free(cat);
}

static void test_key_rules(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();

    pgs_command_t *cmd = patient_cmd(PGS_OP_INSERT);
    add_str(cmd, 1, "idd", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_COLUMN, "(unknown name, 3 bytes, digest ");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 1, "given_name", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "given_name");

    cmd = cmd_new("patients", PGS_OP_DELETE); /* no key at all */
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "id");

    cmd = cmd_new("visit_notes", PGS_OP_DELETE); /* half of a composite key */
    add_str(cmd, 1, "visit_id", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "note_no");

    cmd = patient_cmd(PGS_OP_DELETE);
    add_str(cmd, 1, "id", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "duplicate");

    cmd = cmd_new("patients", PGS_OP_DELETE);
    add_null(cmd, 1, "id");
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "id");

    cmd = patient_cmd(PGS_OP_DELETE);
    add_str(cmd, 1, "clinic_id", SECRET);
    expect_err(cat, cmd, PGS_E_TENANT_MISMATCH, "clinic_id");

    cmd = patient_cmd(PGS_OP_DELETE);
    add_bool(cmd, 1, "clinic_id", 1);
    expect_err(cat, cmd, PGS_E_TENANT_MISMATCH, "clinic_id");

    cmd = cmd_new("patients", PGS_OP_DELETE);
    add_bytes(cmd, 1, "id", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_TYPE, "id");
    pgs_catalog_free(cat);
}

static void test_data_rules(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();

    pgs_command_t *cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "ssn", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_UNKNOWN_COLUMN, "(unknown name, 3 bytes, digest ");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "id", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "id");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "given_name", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "given_name");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "clinic_id", SECRET);
    expect_err(cat, cmd, PGS_E_TENANT_MISMATCH, "clinic_id");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_null(cmd, 0, "clinic_id");
    expect_err(cat, cmd, PGS_E_TENANT_MISMATCH, "clinic_id");

    const char *reserved[] = {"version", "created_at", "updated_at"};
    for (int i = 0; i < 3; i++) {
        cmd = patient_cmd(PGS_OP_UPSERT);
        add_str(cmd, 0, reserved[i], SECRET);
        expect_err(cat, cmd, PGS_E_VALIDATE_RESERVED_COLUMN, reserved[i]);
    }
    pgs_catalog_free(cat);
}

/* invoices: gross is GENERATED ALWAYS AS (...) STORED, seq GENERATED ALWAYS
 * AS IDENTITY, ref GENERATED BY DEFAULT AS IDENTITY (writable). */
static pgs_catalog_t *generated_catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "invoices");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "net", "numeric", 1700, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "gross", "numeric", 1700, 0, 0, 1, 0);
    pgs_catalog_entity_set_generated(e, 3);
    pgs_catalog_entity_add_column(e, "seq", "bigint", 20, 0, 1, 1, 0);
    pgs_catalog_entity_set_generated(e, 4);
    pgs_catalog_entity_add_column(e, "ref", "bigint", 20, 0, 1, 1, 0);
    return cat;
}

static pgs_command_t *invoice_cmd(pgs_op_t op, const char *col)
{
    pgs_command_t *cmd = cmd_new("invoices", op);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    add_str(cmd, 0, col, "12");
    return cmd;
}

/* A command may not write a column the database generates, in any op; an
 * INSERT need not give it (NOT NULL seq included); a BY DEFAULT identity
 * stays writable. The multi-row UPDATE names none of them, so a partial
 * UPDATE of the table does not fail there and fall back one by one. */
static void test_generated_columns(void **state)
{
    (void)state;
    pgs_catalog_t *cat = generated_catalog();
    const pgs_op_t ops[] = {PGS_OP_INSERT, PGS_OP_UPSERT, PGS_OP_UPDATE};
    for (int i = 0; i < 3; i++) {
        expect_err(cat, invoice_cmd(ops[i], "gross"), PGS_E_VALIDATE_GENERATED_COLUMN, "gross");
        expect_err(cat, invoice_cmd(ops[i], "seq"), PGS_E_VALIDATE_GENERATED_COLUMN, "seq");
        expect_err(cat, invoice_cmd(ops[i], "net"), PGS_OK, NULL);
        expect_err(cat, invoice_cmd(ops[i], "ref"), PGS_OK, NULL);
    }
    assert_string_equal(pgs_error_code(PGS_E_VALIDATE_GENERATED_COLUMN),
                        "VALIDATE_GENERATED_COLUMN");

    pgs_command_t *cmd = invoice_cmd(PGS_OP_UPDATE, "net");
    const pgs_entity_t *ent = NULL;
    char errstr[256];
    assert_int_equal(pgs_catalog_validate(cat, cmd, &ent, errstr, sizeof(errstr)), PGS_OK);
    pgs_shape_t shape;
    pgs_bshape_t bs;
    assert_int_equal(pgs_sqlgen_shape_of(ent, cmd, &shape), 0);
    assert_int_equal(pgs_sqlbatch_shape_of(ent, cmd, &shape, &bs), 0);
    for (int i = 0; i < bs.shape.ncols; i++)
        assert_false(ent->cols[bs.shape.cols[i]].generated);
    char *sql = pgs_sqlbatch_statement("clinic", &bs);
    assert_null(strstr(sql, "\"gross\""));
    assert_null(strstr(sql, "\"seq\""));
    assert_non_null(strstr(sql, "\"ref\""));
    free(sql);
    pgs_command_free(cmd);
    pgs_catalog_free(cat);
}

/* Works hold references to the catalog they were validated against; the
 * worker frees a retired catalog when the count is back to zero. */
static void test_refs(void **state)
{
    (void)state;
    pgs_catalog_t *cat = generated_catalog();
    assert_int_equal(pgs_catalog_refs(cat), 0);
    assert_ptr_equal(pgs_catalog_ref(cat), cat);
    pgs_catalog_ref(cat);
    assert_int_equal(pgs_catalog_refs(cat), 2);
    pgs_catalog_unref(cat);
    pgs_catalog_unref(cat);
    assert_int_equal(pgs_catalog_refs(cat), 0);
    pgs_catalog_free(cat);
}

static void test_op_rules(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();

    pgs_command_t *cmd = cmd_new("patients", PGS_OP_INSERT);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    add_str(cmd, 0, "birth_date", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_MISSING_COLUMN, "given_name");

    cmd = cmd_new("patients", PGS_OP_UPSERT);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    expect_err(cat, cmd, PGS_E_VALIDATE_MISSING_COLUMN, "given_name");

    cmd = cmd_new("patients", PGS_OP_INSERT);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    add_null(cmd, 0, "given_name");
    expect_err(cat, cmd, PGS_E_VALIDATE_MISSING_COLUMN, "given_name");

    /* a not-null column with a default may be omitted, not nulled */
    cmd = patient_cmd(PGS_OP_INSERT);
    add_null(cmd, 0, "active");
    expect_err(cat, cmd, PGS_E_VALIDATE_MISSING_COLUMN, "active");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_null(cmd, 0, "active");
    expect_err(cat, cmd, PGS_E_VALIDATE_MISSING_COLUMN, "active");

    cmd = cmd_new("patients", PGS_OP_UPDATE);
    add_str(cmd, 1, "id", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_NO_DATA, "patients");

    cmd = cmd_new("patients", PGS_OP_UPDATE);
    add_str(cmd, 1, "id", SECRET);
    add_str(cmd, 0, "clinic_id", "c1");
    expect_err(cat, cmd, PGS_E_VALIDATE_NO_DATA, "patients");

    cmd = patient_cmd(PGS_OP_DELETE);
    add_str(cmd, 0, "birth_date", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_UNEXPECTED_DATA, "patients");
    pgs_catalog_free(cat);
}

static void test_expected_version(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();

    pgs_command_t *cmd = cmd_new("visit_notes", PGS_OP_DELETE);
    add_str(cmd, 1, "visit_id", SECRET);
    add_str(cmd, 1, "note_no", SECRET);
    cmd->has_expected_version = 1;
    expect_err(cat, cmd, PGS_E_VALIDATE_NO_VERSION, "visit_notes");

    cmd = patient_cmd(PGS_OP_INSERT);
    cmd->has_expected_version = 1;
    expect_err(cat, cmd, PGS_E_VALIDATE_UNEXPECTED_DATA, "INSERT");

    const pgs_op_t ok_ops[] = {PGS_OP_UPSERT, PGS_OP_UPDATE, PGS_OP_DELETE};
    for (int i = 0; i < 3; i++) {
        cmd = patient_cmd(ok_ops[i]);
        cmd->has_expected_version = 1;
        cmd->expected_version = 7;
        expect_err(cat, cmd, PGS_OK, NULL);
    }
    pgs_catalog_free(cat);
}

static void test_types(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();

    pgs_command_t *cmd = patient_cmd(PGS_OP_UPDATE);
    add_bytes(cmd, 0, "birth_date", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_TYPE, "birth_date");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_str(cmd, 0, "photo", SECRET);
    expect_err(cat, cmd, PGS_E_VALIDATE_TYPE, "photo");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_bool(cmd, 0, "photo", 1);
    expect_err(cat, cmd, PGS_E_VALIDATE_TYPE, "photo");

    cmd = patient_cmd(PGS_OP_UPDATE);
    add_bool(cmd, 0, "birth_date", 1);
    expect_err(cat, cmd, PGS_E_VALIDATE_TYPE, "birth_date");

    /* booleans are fine for boolean and text columns */
    cmd = patient_cmd(PGS_OP_UPDATE);
    add_bool(cmd, 0, "active", 0);
    expect_err(cat, cmd, PGS_OK, NULL);
    cmd = cmd_new("patients", PGS_OP_UPDATE);
    add_str(cmd, 1, "id", "0b3c0f4e-0000-4000-8000-000000000001");
    add_bool(cmd, 0, "given_name", 1);
    expect_err(cat, cmd, PGS_OK, NULL);

    /* longs and doubles are left to PostgreSQL's input functions */
    cmd = patient_cmd(PGS_OP_UPDATE);
    pgs_value_t *v = add_field(cmd, 0, "birth_date");
    v->type = PGS_VAL_LONG;
    v->u.l = 20200101;
    expect_err(cat, cmd, PGS_OK, NULL);
    pgs_catalog_free(cat);
}

static void test_too_many_columns(void **state)
{
    (void)state;
    pgs_catalog_t *cat = test_catalog();
    pgs_command_t *cmd = patient_cmd(PGS_OP_UPDATE);
    for (int i = 0; i < 64; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", i);
        add_str(cmd, 0, name, SECRET);
    }
    expect_err(cat, cmd, PGS_E_VALIDATE_UNEXPECTED_DATA, "too many columns");
    pgs_catalog_free(cat);
}

/* Each wall the catalog requires, missing alone, keeps a table out, and the
 * reason names the wall. */
static void test_table_walls(void **state)
{
    (void)state;
    const pgs_table_facts_t good = {1, 1, 1, 1, 1, 0};
    assert_null(pgs_catalog_table_problem(&good));

    struct {
        pgs_table_facts_t facts;
        const char *why;
    } bad[] = {
        {{0, 1, 1, 1, 1, 0}, "clinic_id"},   {{1, 0, 1, 1, 1, 0}, "primary key"},
        {{1, 1, 0, 0, 1, 0}, "not enabled"}, {{1, 1, 1, 0, 1, 0}, "not forced"},
        {{1, 1, 1, 1, 0, 0}, "no policy"},   {{1, 1, 1, 1, 1, 1}, "permissive policy"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = pgs_catalog_table_problem(&bad[i].facts);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i].why));
    }
}

/* Keys (clinic_id, id): producers name id alone, the clinic part comes from
 * the command; a repeat of the command's clinic is tolerated, another clinic
 * is a tenant violation that echoes no value. */
static void test_clinic_in_key(void **state)
{
    (void)state;
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "charts");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "body", "text", 25, 0, 0, 0, 1);
    assert_true(pgs_catalog_entity_pk_has_clinic(e));
    assert_int_equal(e->npk, 1);
    assert_string_equal(e->cols[e->pk[0]].name, "id");

    pgs_command_t *cmd = cmd_new("charts", PGS_OP_INSERT);
    add_str(cmd, 1, "id", "0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b");
    add_str(cmd, 0, "body", SECRET);
    expect_err(cat, cmd, PGS_OK, NULL);

    cmd = cmd_new("charts", PGS_OP_UPSERT);
    add_str(cmd, 1, "clinic_id", "c1");
    add_str(cmd, 1, "id", "0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b");
    expect_err(cat, cmd, PGS_OK, NULL);

    cmd = cmd_new("charts", PGS_OP_UPDATE);
    add_str(cmd, 1, "id", "0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b");
    add_str(cmd, 1, "clinic_id", "SECRET-other-clinic");
    add_str(cmd, 0, "body", SECRET);
    expect_err(cat, cmd, PGS_E_TENANT_MISMATCH, "clinic_id");

    cmd = cmd_new("charts", PGS_OP_DELETE); /* the clinic alone is not the key */
    add_str(cmd, 1, "clinic_id", "c1");
    expect_err(cat, cmd, PGS_E_VALIDATE_KEY_MISMATCH, "id");
    pgs_catalog_free(cat);

    cat = test_catalog();
    assert_false(pgs_catalog_entity_pk_has_clinic(pgs_catalog_find(cat, "patients")));
    assert_true(pgs_catalog_entity_pk_has_clinic(pgs_catalog_find(cat, "visit_notes")));
    pgs_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_valid_commands),
        cmocka_unit_test(test_unknown_entity),
        cmocka_unit_test(test_hostile_names_not_echoed),
        cmocka_unit_test(test_key_rules),
        cmocka_unit_test(test_data_rules),
        cmocka_unit_test(test_generated_columns),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_op_rules),
        cmocka_unit_test(test_expected_version),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_too_many_columns),
        cmocka_unit_test(test_table_walls),
        cmocka_unit_test(test_clinic_in_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
