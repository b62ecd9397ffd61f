/* Unit tests: command digests are equal exactly for commands of equal content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/digest.h"

#define MAX_FIELDS 8

static pgs_catalog_t *catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "phone", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "visits", "integer", 23, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    /* a second entity of the same columns: the entity is content too */
    e = pgs_catalog_add_entity(cat, "archived_patients");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "phone", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "visits", "integer", 23, 0, 0, 0, 0);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    e = pgs_catalog_add_entity(cat, "rooms");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "room_no", "integer", 23, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "label", "text", 25, 0, 0, 0, 0);
    return cat;
}

static const pgs_entity_t *entity(const pgs_catalog_t *cat, const char *name)
{
    const pgs_entity_t *e = pgs_catalog_find(cat, name);
    assert_non_null(e);
    return e;
}

static void put(pgs_field_t *f, const char *name, pgs_value_type_t t, const char *s)
{
    f->name = name;
    f->value.type = t;
    f->value.u.s.ptr = s;
    f->value.u.s.len = s ? strlen(s) : 0;
}

/* A patient UPSERT: id and two data columns. */
static pgs_command_t *patient(const char *id)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e5f";
    c->clinic_id = "clinic-001";
    c->actor = "svc-test";
    c->entity = "patients";
    c->op = PGS_OP_UPSERT;
    c->issued_at_ms = 1700000000000;
    c->key = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->data = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    put(&c->key[c->key_cnt++], "id", PGS_VAL_STRING, id);
    put(&c->data[c->data_cnt++], "given_name", PGS_VAL_STRING, "Ann");
    put(&c->data[c->data_cnt++], "phone", PGS_VAL_STRING, "555");
    return c;
}

static const char ID[] = "0b3c0f4e-0000-4000-8000-00000000abcd";
#define GOLDEN "b5eebeb378a246106e6c982c1197733d84f0d8f5b82cde39376832f0f079ffa1"

static void digest(const pgs_catalog_t *cat, const pgs_command_t *c, unsigned char *out)
{
    pgs_digest_command(entity(cat, c->entity), c, out);
}

static void assert_same(const pgs_catalog_t *cat, const pgs_command_t *a, const pgs_command_t *b)
{
    unsigned char da[PGS_DIGEST_SIZE], db[PGS_DIGEST_SIZE];
    digest(cat, a, da);
    digest(cat, b, db);
    assert_memory_equal(da, db, PGS_DIGEST_SIZE);
}

static void assert_differs(const pgs_catalog_t *cat, const pgs_command_t *a, const pgs_command_t *b)
{
    unsigned char da[PGS_DIGEST_SIZE], db[PGS_DIGEST_SIZE];
    digest(cat, a, da);
    digest(cat, b, db);
    assert_memory_not_equal(da, db, PGS_DIGEST_SIZE);
}

/* A re-send may differ in what is not content: command id, actor,
 * issued_at (and its Kafka position, which is not in the command). */
static void test_resend_is_equal(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = patient(ID), *b = patient(ID);
    b->command_id = "00000000-0000-4000-8000-000000000001";
    b->actor = "gateway-2";
    b->issued_at_ms = 1800000000000;
    assert_same(cat, a, b);
    /* the digest is a function of the content: computed twice, equal */
    assert_same(cat, a, a);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* Key spellings PostgreSQL takes as one row are one content. */
static void test_key_spelling_is_equal(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = patient(ID), *b = patient("0B3C0F4E-0000-4000-8000-00000000ABCD");
    pgs_command_t *c = patient("{0b3c0f4e00004000800000000000abcd}");
    assert_same(cat, a, b);
    assert_same(cat, a, c);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_command_free(c);

    a = patient(ID);
    b = patient(ID);
    a->entity = b->entity = "rooms";
    a->data_cnt = b->data_cnt = 0;
    put(&a->key[0], "room_no", PGS_VAL_STRING, "042");
    b->key[0].name = "room_no";
    b->key[0].value.type = PGS_VAL_LONG;
    b->key[0].value.u.l = 42;
    assert_same(cat, a, b);
    /* with data as well */
    put(&a->data[a->data_cnt++], "label", PGS_VAL_STRING, "A");
    put(&b->data[b->data_cnt++], "label", PGS_VAL_STRING, "A");
    assert_same(cat, a, b);
    pgs_command_free(a);
    pgs_command_free(b);

    a = patient(ID);
    b = patient(ID);
    put(&a->data[a->data_cnt++], "visits", PGS_VAL_STRING, "007");
    b->data[b->data_cnt].name = "visits";
    b->data[b->data_cnt].value.type = PGS_VAL_LONG;
    b->data[b->data_cnt++].value.u.l = 7;
    assert_same(cat, a, b);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* The order of a message's data map is not content; a repeat of the
 * command's clinic_id in key or data is not either. */
static void test_map_order_is_equal(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = patient(ID), *b = patient(ID);
    put(&b->data[0], "phone", PGS_VAL_STRING, "555");
    put(&b->data[1], "given_name", PGS_VAL_STRING, "Ann");
    assert_same(cat, a, b);
    put(&b->data[b->data_cnt++], "clinic_id", PGS_VAL_STRING, "clinic-001");
    put(&b->key[b->key_cnt++], "clinic_id", PGS_VAL_STRING, "clinic-001");
    assert_same(cat, a, b);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

/* A command validated for its entity is digested from the columns that
 * validation found, one not validated by name: the same bytes either way,
 * and the same as the digests stored before (the hex pins the encoding). */
static void test_validated_is_equal(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    for (int variant = 0; variant < 4; variant++) {
        pgs_command_t *c = patient(ID);
        if (variant & 1) { /* another map order */
            put(&c->data[0], "phone", PGS_VAL_STRING, "555");
            put(&c->data[1], "given_name", PGS_VAL_STRING, "Ann");
        }
        if (variant & 2) { /* the clinic repeated in both maps */
            put(&c->data[c->data_cnt++], "clinic_id", PGS_VAL_STRING, "clinic-001");
            put(&c->key[c->key_cnt++], "clinic_id", PGS_VAL_STRING, "clinic-001");
        }
        unsigned char by_name[PGS_DIGEST_SIZE], by_col[PGS_DIGEST_SIZE];
        digest(cat, c, by_name);
        const pgs_entity_t *ent = NULL;
        char err[256];
        assert_int_equal(pgs_catalog_validate(cat, c, &ent, err, sizeof(err)), PGS_OK);
        assert_ptr_equal(c->cols_of, ent);
        digest(cat, c, by_col);
        assert_memory_equal(by_name, by_col, PGS_DIGEST_SIZE);
        char hex[2 * PGS_DIGEST_SIZE + 1];
        for (int i = 0; i < PGS_DIGEST_SIZE; i++)
            snprintf(hex + 2 * i, 3, "%02x", by_col[i]);
        assert_string_equal(hex, GOLDEN);
        /* validated for another entity: its columns say nothing here */
        c->entity = "archived_patients";
        assert_int_equal(pgs_catalog_validate(cat, c, &ent, err, sizeof(err)), PGS_OK);
        c->entity = "patients";
        digest(cat, c, by_col);
        assert_memory_equal(by_name, by_col, PGS_DIGEST_SIZE);
        pgs_command_free(c);
    }
    pgs_catalog_free(cat);
}

/* Any change of what the command writes, or where, or how, is another
 * content. */
static void test_content_changes_differ(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = patient(ID);
    pgs_command_t *b;

    b = patient(ID); /* clinic */
    b->clinic_id = "clinic-002";
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* entity */
    b->entity = "archived_patients";
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* op */
    b->op = PGS_OP_INSERT;
    assert_differs(cat, a, b);
    b->op = PGS_OP_UPDATE;
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient("0b3c0f4e-0000-4000-8000-00000000abce"); /* key */
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* a data value */
    put(&b->data[1], "phone", PGS_VAL_STRING, "556");
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* null is not "" */
    pgs_command_t *c = patient(ID);
    put(&b->data[1], "phone", PGS_VAL_NULL, NULL);
    put(&c->data[1], "phone", PGS_VAL_STRING, "");
    assert_differs(cat, b, c);
    assert_differs(cat, a, b);
    assert_differs(cat, a, c);
    /* and a column sent as null is not a column left out */
    b->data_cnt = 1;
    assert_differs(cat, b, c);
    pgs_command_free(c);
    pgs_command_free(b);

    b = patient(ID); /* a data column added */
    put(&b->data[b->data_cnt++], "visits", PGS_VAL_STRING, "1");
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* a value moved to another column */
    put(&b->data[0], "given_name", PGS_VAL_STRING, "555");
    put(&b->data[1], "phone", PGS_VAL_STRING, "Ann");
    assert_differs(cat, a, b);
    pgs_command_free(b);

    b = patient(ID); /* expected_version: present, and its value */
    c = patient(ID);
    b->has_expected_version = c->has_expected_version = 1;
    b->expected_version = 3;
    c->expected_version = 4;
    assert_differs(cat, a, b);
    assert_differs(cat, b, c);
    c->expected_version = 3;
    assert_same(cat, b, c);
    pgs_command_free(c);
    pgs_command_free(b);

    pgs_command_free(a);
    pgs_catalog_free(cat);
}

/* Length prefixes: moving bytes between neighbouring parts changes the
 * digest (a joined encoding would not see it). */
static void test_parts_do_not_run_together(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_command_t *a = patient(ID), *b = patient(ID);
    a->clinic_id = "clinic-0";
    b->clinic_id = "clinic-";
    put(&a->data[0], "given_name", PGS_VAL_STRING, "An");
    put(&b->data[0], "given_name", PGS_VAL_STRING, "0An");
    assert_differs(cat, a, b);
    put(&a->data[0], "given_name", PGS_VAL_STRING, "Ann5");
    put(&a->data[1], "phone", PGS_VAL_STRING, "55");
    put(&b->data[0], "given_name", PGS_VAL_STRING, "Ann");
    put(&b->data[1], "phone", PGS_VAL_STRING, "555");
    b->clinic_id = "clinic-0";
    assert_differs(cat, a, b);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_is_equal),
        cmocka_unit_test(test_key_spelling_is_equal),
        cmocka_unit_test(test_map_order_is_equal),
        cmocka_unit_test(test_validated_is_equal),
        cmocka_unit_test(test_content_changes_differ),
        cmocka_unit_test(test_parts_do_not_run_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
