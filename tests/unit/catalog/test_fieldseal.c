/* Unit tests: the canonical row key and the sealing of a command's values
 * for field-encrypted columns (catalog/fieldseal.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "catalog/digest.h"
#include "catalog/fieldseal.h"
#include "common/fieldcrypt.h"
#include "common/keyring.h"

#define MAX_FIELDS 8
#define OID_TEXT   25
#define OID_INT4   23
#define OID_UUID   2950
#define OID_BYTEA  17

/* 32 zero bytes (key 1, "*"), 32 bytes of 0x01 (key 2, clinic-002) */
static const char RING[] = "key 1 field * AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= current\n"
                           "key 2 field clinic-002 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= "
                           "current\n";

static PgsKeyring *ring(const char *text)
{
    PgsKeyring *r = NULL;
    char err[256];
    if (pgs_keyring_parse(text, &r, err, sizeof(err)) != 0)
        fail_msg("keyring: %s", err);
    return r;
}

/* patients: (clinic_id, id uuid) key, given_name sealed text, visits sealed
 * integer, phone in clear; rooms: (clinic_id, wing int, room uuid) key */
static pgs_catalog_t *catalog(void)
{
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", OID_TEXT, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "id", "uuid", OID_UUID, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "bytea", OID_BYTEA, 0, 0, 0, 1);
    pgs_catalog_entity_set_sealed(e, 2, "text", OID_TEXT);
    pgs_catalog_entity_add_column(e, "visits", "bytea", OID_BYTEA, 0, 0, 0, 1);
    pgs_catalog_entity_set_sealed(e, 3, "integer", OID_INT4);
    pgs_catalog_entity_add_column(e, "phone", "text", OID_TEXT, 0, 0, 0, 1);
    e = pgs_catalog_add_entity(cat, "rooms");
    pgs_catalog_entity_add_column(e, "clinic_id", "text", OID_TEXT, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "wing", "integer", OID_INT4, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "room", "uuid", OID_UUID, 3, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "label", "bytea", OID_BYTEA, 0, 0, 0, 1);
    pgs_catalog_entity_set_sealed(e, 3, "text", OID_TEXT);
    return cat;
}

static void put(pgs_field_t *f, const char *name, pgs_value_type_t t, const char *s)
{
    f->name = name;
    f->value.type = t;
    f->value.u.s.ptr = s;
    f->value.u.s.len = s ? strlen(s) : 0;
}

static pgs_command_t *patient(const char *clinic, const char *id, const char *given)
{
    pgs_command_t *c = pgs_command_new();
    c->command_id = "7d9f6c1e-8a4b-4c2d-9e1f-0a1b2c3d4e5f";
    c->clinic_id = clinic;
    c->actor = "svc-test";
    c->entity = "patients";
    c->op = PGS_OP_UPSERT;
    c->key = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    c->data = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    put(&c->key[c->key_cnt++], "id", PGS_VAL_STRING, id);
    put(&c->data[c->data_cnt++], "given_name", given ? PGS_VAL_STRING : PGS_VAL_NULL, given);
    pgs_field_t *v = &c->data[c->data_cnt++];
    v->name = "visits";
    v->value.type = PGS_VAL_LONG;
    v->value.u.l = 7;
    put(&c->data[c->data_cnt++], "phone", PGS_VAL_STRING, "555-0100");
    return c;
}

static const char ID_UPPER[] = "{0B3C0F4E-0000-4000-8000-00000000ABCD}";
static const char ID[] = "0b3c0f4e-0000-4000-8000-00000000abcd";

static void test_row_key_canonical(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    pgs_sbuf_t sb = {0};
    pgs_command_t *c = patient("clinic-001", ID_UPPER, "Ann");
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "patients"), c, &sb), 0);
    assert_string_equal(sb.buf, ID); /* clinic_id is not part of it */
    pgs_command_free(c);

    /* two key columns in key order, joined by 0x1F; " +042" is 42 */
    c = pgs_command_new();
    c->clinic_id = "clinic-001";
    c->key = pgs_arena_alloc(c->arena, MAX_FIELDS * sizeof(pgs_field_t));
    put(&c->key[c->key_cnt++], "room", PGS_VAL_STRING, "0B3C0F4E00004000800000000000ABCD");
    put(&c->key[c->key_cnt++], "wing", PGS_VAL_STRING, " +042");
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "rooms"), c, &sb), 0);
    assert_string_equal(sb.buf, "42\x1f"
                                "0b3c0f4e-0000-4000-8000-00000000abcd");
    /* a long is its decimal digits */
    c->key[1].value.type = PGS_VAL_LONG;
    c->key[1].value.u.l = -7;
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "rooms"), c, &sb), 0);
    assert_string_equal(sb.buf, "-7\x1f"
                                "0b3c0f4e-0000-4000-8000-00000000abcd");
    /* not a uuid, not an integer, missing: no canonical form */
    put(&c->key[0], "room", PGS_VAL_STRING, "not-a-uuid");
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "rooms"), c, &sb), -1);
    put(&c->key[0], "room", PGS_VAL_STRING, ID);
    put(&c->key[1], "wing", PGS_VAL_STRING, "4x2");
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "rooms"), c, &sb), -1);
    c->key_cnt = 1;
    assert_int_equal(pgs_fieldseal_row_key(pgs_catalog_find(cat, "rooms"), c, &sb), -1);
    pgs_command_free(c);
    free(sb.buf);
    pgs_catalog_free(cat);
}

/* Decrypts value @p v of @p col for the row key @p rk into @p out. */
static int open_value(const PgsKeyring *r, const char *clinic, const char *col, const char *rk,
                      const pgs_value_t *v, char *out, size_t *len, char *err)
{
    PgsFieldContext ctx = {clinic, "clinic.patients", col, rk};
    return pgs_field_decrypt(r, &ctx, (const unsigned char *)v->u.s.ptr, v->u.s.len,
                             (unsigned char *)out, len, err, 256);
}

static void test_seal_round_trip(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    PgsKeyring *r = ring(RING);
    pgs_command_t *c = patient("clinic-001", ID_UPPER, "Ann");
    unsigned char before[PGS_DIGEST_SIZE];
    pgs_digest_command(e, c, before);
    char err[256] = "";
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)), PGS_OK);
    /* sealed columns are bytes envelopes on the "*" key; phone stays clear */
    assert_int_equal(c->data[0].value.type, PGS_VAL_BYTES);
    assert_int_equal(c->data[0].value.u.s.len, 3 + PGS_ENVELOPE_OVERHEAD);
    assert_int_equal(pgs_envelope_key_id((const unsigned char *)c->data[0].value.u.s.ptr,
                                         c->data[0].value.u.s.len),
                     1);
    assert_int_equal(c->data[1].value.type, PGS_VAL_BYTES);
    assert_int_equal(c->data[2].value.type, PGS_VAL_STRING);
    assert_string_equal(c->data[2].value.u.s.ptr, "555-0100");
    /* the digest is the plaintext's */
    assert_non_null(c->digest);
    assert_memory_equal(c->digest, before, PGS_DIGEST_SIZE);
    char out[64];
    size_t len = 0;
    assert_int_equal(
        open_value(r, "clinic-001", "given_name", ID, &c->data[0].value, out, &len, err), 3);
    assert_memory_equal(out, "Ann", 3);
    assert_int_equal(open_value(r, "clinic-001", "visits", ID, &c->data[1].value, out, &len, err),
                     1);
    assert_memory_equal(out, "7", 1);
    /* bound to its row, column and clinic */
    assert_true(open_value(r, "clinic-001", "given_name", "0b3c0f4e-0000-4000-8000-00000000abce",
                           &c->data[0].value, out, &len, err) < 0);
    assert_non_null(strstr(err, "authentication failed"));
    assert_true(open_value(r, "clinic-001", "visits", ID, &c->data[0].value, out, &len, err) < 0);
    assert_true(open_value(r, "clinic-003", "given_name", ID, &c->data[0].value, out, &len, err) <
                0);
    pgs_command_free(c);
    pgs_keyring_free(r);
    pgs_catalog_free(cat);
}

static void test_digest_from_plaintext(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    PgsKeyring *r = ring(RING);
    char err[256];
    pgs_command_t *a = patient("clinic-001", ID, "Ann"), *b = patient("clinic-001", ID, "Ann"),
                  *d = patient("clinic-001", ID, "Bob");
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, a, err, sizeof(err)), PGS_OK);
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, b, err, sizeof(err)), PGS_OK);
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, d, err, sizeof(err)), PGS_OK);
    /* random nonces: other ciphertexts of one plaintext ... */
    assert_memory_not_equal(a->data[0].value.u.s.ptr, b->data[0].value.u.s.ptr,
                            a->data[0].value.u.s.len);
    /* ... and yet one digest; other content, another digest */
    assert_memory_equal(a->digest, b->digest, PGS_DIGEST_SIZE);
    assert_memory_not_equal(a->digest, d->digest, PGS_DIGEST_SIZE);
    pgs_command_free(a);
    pgs_command_free(b);
    pgs_command_free(d);
    pgs_keyring_free(r);
    pgs_catalog_free(cat);
}

static void test_clinic_key_wins(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    PgsKeyring *r = ring(RING);
    char err[256];
    pgs_command_t *c = patient("clinic-002", ID, "Ann");
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)), PGS_OK);
    assert_int_equal(pgs_envelope_key_id((const unsigned char *)c->data[0].value.u.s.ptr,
                                         c->data[0].value.u.s.len),
                     2);
    pgs_command_free(c);
    pgs_keyring_free(r);
    pgs_catalog_free(cat);
}

static void assert_untouched(const pgs_command_t *c)
{
    assert_int_equal(c->data[0].value.type, PGS_VAL_STRING);
    assert_int_equal(c->data[1].value.type, PGS_VAL_LONG);
    assert_null(c->digest);
}

static void test_no_key_is_a_dead_letter(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    char err[256] = "";
    pgs_command_t *c = patient("clinic-001", ID, "Ann");
    /* no keyring */
    assert_int_equal(pgs_fieldseal_command(NULL, "clinic", e, c, err, sizeof(err)),
                     PGS_E_VALIDATE_NO_FIELD_KEY);
    assert_non_null(strstr(err, "given_name"));
    assert_non_null(strstr(err, "no keyring"));
    assert_null(strstr(err, "Ann"));
    assert_untouched(c);
    /* a keyring with clinic-002's key only: none for clinic-001 */
    PgsKeyring *r =
        ring("key 2 field clinic-002 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= current\n");
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)),
                     PGS_E_VALIDATE_NO_FIELD_KEY);
    assert_non_null(strstr(err, "no current field key"));
    assert_untouched(c);
    pgs_keyring_free(r);
    /* a pseudonym key is no field key */
    r = ring("key 3 pseudonym * AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= current\n");
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)),
                     PGS_E_VALIDATE_NO_FIELD_KEY);
    assert_untouched(c);
    pgs_keyring_free(r);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

static void test_bad_key_form(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    PgsKeyring *r = ring(RING);
    char err[256] = "";
    pgs_command_t *c = patient("clinic-001", "0b3c0f4e-SECRET", "Ann");
    assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)),
                     PGS_E_VALIDATE_KEY_FORM);
    assert_null(strstr(err, "SECRET"));
    assert_untouched(c);
    assert_string_equal(pgs_error_code(PGS_E_VALIDATE_KEY_FORM), "VALIDATE_KEY_FORM");
    assert_string_equal(pgs_error_code(PGS_E_VALIDATE_NO_FIELD_KEY), "VALIDATE_NO_FIELD_KEY");
    assert_int_equal(pgs_error_class(PGS_E_VALIDATE_NO_FIELD_KEY), PGS_ECLASS_VALIDATE);
    assert_false(pgs_error_is_transient(PGS_E_VALIDATE_NO_FIELD_KEY));
    pgs_command_free(c);
    pgs_keyring_free(r);
    pgs_catalog_free(cat);
}

/* Nothing sealed to write (null values, clear columns only): no key needed. */
static void test_nothing_to_seal(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    char err[256];
    pgs_command_t *c = patient("clinic-001", ID, NULL);
    c->data[1] = c->data[2]; /* phone only, given_name null */
    c->data_cnt = 2;
    assert_int_equal(pgs_fieldseal_command(NULL, "clinic", e, c, err, sizeof(err)), PGS_OK);
    assert_int_equal(c->data[0].value.type, PGS_VAL_NULL);
    assert_null(c->digest);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

/* A sealed column takes values of its clear type, not bytes. */
static void test_validate_plain_type(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    char err[256];
    const pgs_entity_t *e = NULL;
    pgs_command_t *c = patient("clinic-001", ID, "Ann");
    assert_int_equal(pgs_catalog_validate(cat, c, &e, err, sizeof(err)), PGS_OK);
    put(&c->data[0], "given_name", PGS_VAL_BYTES, "raw");
    assert_int_equal(pgs_catalog_validate(cat, c, &e, err, sizeof(err)), PGS_E_VALIDATE_TYPE);
    pgs_command_free(c);
    pgs_catalog_free(cat);
}

/* The cost of sealing, printed (not asserted: machines differ). */
static void test_seal_cost(void **state)
{
    (void)state;
    pgs_catalog_t *cat = catalog();
    const pgs_entity_t *e = pgs_catalog_find(cat, "patients");
    PgsKeyring *r = ring(RING);
    char err[256];
    const int n = 20000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        pgs_command_t *c = patient("clinic-001", ID, "Annabelle Example-Person");
        assert_int_equal(pgs_fieldseal_command(r, "clinic", e, c, err, sizeof(err)), PGS_OK);
        pgs_command_free(c);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("fieldseal: %.2f us per command (2 sealed values, digest, row key)\n", us / n);
    pgs_keyring_free(r);
    pgs_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_key_canonical),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_digest_from_plaintext),
        cmocka_unit_test(test_clinic_key_wins),
        cmocka_unit_test(test_no_key_is_a_dead_letter),
        cmocka_unit_test(test_bad_key_form),
        cmocka_unit_test(test_nothing_to_seal),
        cmocka_unit_test(test_validate_plain_type),
        cmocka_unit_test(test_seal_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
