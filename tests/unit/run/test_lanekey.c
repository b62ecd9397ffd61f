/* Unit tests: lane identity is the exact (clinic, entity, canonical key) tuple. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/keyform.h"
#include "run/lanekey.h"
#include "run/lanes.h"

static pgs_catalog_t *cat;

static int setup(void **state)
{
    (void)state;
    cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    e = pgs_catalog_add_entity(cat, "notes");
    pgs_catalog_entity_add_column(e, "ref", "text", 25, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    e = pgs_catalog_add_entity(cat, "visits");
    pgs_catalog_entity_add_column(e, "no", "integer", 23, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "seq", "bigint", 20, 2, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgs_catalog_free(cat);
    return 0;
}

typedef struct {
    pgs_command_t cmd;
    pgs_field_t key[2];
} tcmd_t;

static void tcmd_str(tcmd_t *t, const char *clinic, const char *entity, const char *col,
                     const char *val)
{
    memset(t, 0, sizeof(*t));
    t->cmd.clinic_id = clinic;
    t->cmd.entity = entity;
    t->cmd.key = t->key;
    t->cmd.key_cnt = 1;
    t->key[0].name = col;
    t->key[0].value.type = PGS_VAL_STRING;
    t->key[0].value.u.s.ptr = val;
    t->key[0].value.u.s.len = strlen(val);
}

/* The lane key of @p t, malloc'd, its length in *len. */
static char *key_of(const tcmd_t *t, size_t *len)
{
    pgs_sbuf_t sb = {0};
    pgs_lanekey_command(&sb, &t->cmd, pgs_catalog_find(cat, t->cmd.entity));
    *len = sb.len;
    return sb.buf;
}

static int same_key(const tcmd_t *a, const tcmd_t *b)
{
    size_t la, lb;
    char *ka = key_of(a, &la), *kb = key_of(b, &lb);
    int same = la == lb && memcmp(ka, kb, la) == 0;
    free(ka);
    free(kb);
    return same;
}

/* The pair whose 0x1f-joined keys were equal: clinic "A" with key
 * "x␟notes␟R" and clinic "A␟notes␟x" with key "R". */
static void test_separator_in_clinic_is_two_lanes(void **state)
{
    (void)state;
    tcmd_t a, b;
    tcmd_str(&a, "A", "notes", "ref", "x\x1fnotes\x1fR");
    tcmd_str(&b, "A\x1fnotes\x1fx", "notes", "ref", "R");
    assert_false(same_key(&a, &b));

    /* and pushed into lanes, they are two lanes of two clinics: each take
     * returns the one item of one clinic */
    pgs_lanes_t *lanes = pgs_lanes_new();
    pgs_lane_item_t ia, ib, *out[4];
    size_t la, lb;
    char *ka = key_of(&a, &la), *kb = key_of(&b, &lb);
    pgs_lanes_push(lanes, &ia, a.cmd.clinic_id, ka, la);
    pgs_lanes_push(lanes, &ib, b.cmd.clinic_id, kb, lb);
    assert_int_equal(pgs_lanes_ready(lanes), 2);
    assert_int_equal(pgs_lanes_take(lanes, out, 4), 1);
    assert_int_equal(pgs_lanes_take(lanes, out + 1, 4), 1);
    assert_true((out[0] == &ia && out[1] == &ib) || (out[0] == &ib && out[1] == &ia));
    pgs_lanes_complete(lanes, out[0]);
    pgs_lanes_complete(lanes, out[1]);
    pgs_lanes_free(lanes);
    free(ka);
    free(kb);
}

/* Two clinic ids equal in their first 1 100 bytes once shared a lane: the
 * old key was cut at 1 023 bytes. */
static void test_long_clinics_are_two_lanes(void **state)
{
    (void)state;
    char c1[1200], c2[1200];
    memset(c1, 'c', sizeof(c1) - 1);
    c1[sizeof(c1) - 1] = '\0';
    memcpy(c2, c1, sizeof(c1));
    c2[1150] = 'd';
    tcmd_t a, b;
    tcmd_str(&a, c1, "patients", "id", "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f");
    tcmd_str(&b, c2, "patients", "id", "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f");
    assert_false(same_key(&a, &b));
    size_t len;
    char *k = key_of(&a, &len);
    assert_true(len > 1200); /* never truncated */
    free(k);
}

/* The same key bytes pushed for two clinics are two lanes even when the
 * caller's key does not name the clinic. */
static void test_lane_belongs_to_one_clinic(void **state)
{
    (void)state;
    pgs_lanes_t *lanes = pgs_lanes_new();
    pgs_lane_item_t ia, ib, *out[4];
    pgs_lanes_push(lanes, &ia, "clinic-a", "k", 1);
    pgs_lanes_push(lanes, &ib, "clinic-b", "k", 1);
    assert_int_equal(pgs_lanes_ready(lanes), 2); /* not queued behind each other */
    assert_int_equal(pgs_lanes_take(lanes, out, 4), 1);
    assert_int_equal(pgs_lanes_take(lanes, out + 1, 4), 1);
    assert_ptr_not_equal(out[0], out[1]);
    pgs_lanes_complete(lanes, out[0]);
    pgs_lanes_complete(lanes, out[1]);
    pgs_lanes_free(lanes);
}

static void test_uuid_spellings_share_a_lane(void **state)
{
    (void)state;
    static const char *const spellings[] = {
        "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f",    "0E9A3C4E-6F11-4B6E-9D2A-7C1F0B2D3E4F",
        "{0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f}",  "0e9a3c4e6f114b6e9d2a7c1f0b2d3e4f",
        "0e9a-3c4e-6f11-4b6e-9d2a-7c1f-0b2d-3e4f",
    };
    tcmd_t ref, t;
    tcmd_str(&ref, "c1", "patients", "id", spellings[0]);
    for (size_t i = 1; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        tcmd_str(&t, "c1", "patients", "id", spellings[i]);
        assert_true(same_key(&ref, &t));
    }
    /* another uuid, or the same in another clinic, is another lane */
    tcmd_str(&t, "c1", "patients", "id", "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e40");
    assert_false(same_key(&ref, &t));
    tcmd_str(&t, "c2", "patients", "id", spellings[1]);
    assert_false(same_key(&ref, &t));
    /* a text key is compared byte for byte: case matters there */
    tcmd_t n1, n2;
    tcmd_str(&n1, "c1", "notes", "ref", "abc");
    tcmd_str(&n2, "c1", "notes", "ref", "ABC");
    assert_false(same_key(&n1, &n2));
}

static void test_integer_spellings_share_a_lane(void **state)
{
    (void)state;
    tcmd_t a, b;
    pgs_field_t *k;
    /* composite key (no, seq): "042" and 42, " +7 " and 7 */
    tcmd_str(&a, "c1", "visits", "no", "042");
    a.cmd.key_cnt = 2;
    k = &a.key[1];
    k->name = "seq";
    k->value.type = PGS_VAL_STRING;
    k->value.u.s.ptr = " +7 ";
    k->value.u.s.len = 4;
    memset(&b, 0, sizeof(b));
    b.cmd.clinic_id = "c1";
    b.cmd.entity = "visits";
    b.cmd.key = b.key;
    b.cmd.key_cnt = 2;
    b.key[0].name = "seq"; /* key order in the message does not matter */
    b.key[0].value.type = PGS_VAL_LONG;
    b.key[0].value.u.l = 7;
    b.key[1].name = "no";
    b.key[1].value.type = PGS_VAL_LONG;
    b.key[1].value.u.l = 42;
    assert_true(same_key(&a, &b));
    b.key[1].value.u.l = 43;
    assert_false(same_key(&a, &b));
}

static void test_keyform(void **state)
{
    (void)state;
    const pgs_entity_t *visits = pgs_catalog_find(cat, "visits");
    const pgs_column_t *icol = &visits->cols[0];
    pgs_column_t bcol = {.name = "b", .type_oid = 16};
    struct {
        const pgs_column_t *col;
        const char *in, *out; /* out NULL: not a value of the column */
    } cases[] = {
        {icol, "0", "0"},     {icol, "-0", "0"},  {icol, "  -0012 ", "-12"}, {icol, "12a", NULL},
        {icol, "", NULL},     {icol, "+", NULL},  {icol, "1.0", NULL},       {&bcol, "TRUE", "t"},
        {&bcol, " yes", "t"}, {&bcol, "on", "t"}, {&bcol, "o", NULL},        {&bcol, "of", "f"},
        {&bcol, "0", "f"},    {&bcol, "F", "f"},  {&bcol, "maybe", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pgs_sbuf_t sb = {0};
        pgs_value_t v = {.type = PGS_VAL_STRING};
        v.u.s.ptr = cases[i].in;
        v.u.s.len = strlen(cases[i].in);
        int rc = pgs_keyform_append(&sb, cases[i].col, &v);
        if (cases[i].out) {
            assert_int_equal(rc, 0);
            assert_int_equal(sb.len, strlen(cases[i].out));
            assert_memory_equal(sb.buf, cases[i].out, sb.len);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(sb.len, 0);
        }
        free(sb.buf);
    }
    /* uuid: a bad digit, a misplaced hyphen, one brace, a digit short */
    const pgs_column_t *ucol = &pgs_catalog_find(cat, "patients")->cols[0];
    static const char *const bad[] = {
        "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4g",  "0e9a3c4-e6f11-4b6e-9d2a-7c1f0b2d3e4f",
        "{0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f", "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4",
        "0e9a3c4e-6f11-4b6e-9d2a-7c1f0b2d3e4f-",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pgs_sbuf_t sb = {0};
        pgs_value_t v = {.type = PGS_VAL_STRING};
        v.u.s.ptr = bad[i];
        v.u.s.len = strlen(bad[i]);
        assert_int_equal(pgs_keyform_append(&sb, ucol, &v), -1);
        free(sb.buf);
    }
}

/* Audit events of two clinics with one event id are two lanes. */
static void test_audit_lane_names_the_clinic(void **state)
{
    (void)state;
    pgs_audit_event_t a = {0}, b = {0};
    a.clinic_id = "c1";
    b.clinic_id = "c2";
    a.event_id = b.event_id = "7d3c1f0b-2d3e-4f0e-9a3c-4e6f114b6e9d";
    pgs_sbuf_t ka = {0}, kb = {0};
    pgs_lanekey_audit(&ka, &a);
    pgs_lanekey_audit(&kb, &b);
    assert_false(ka.len == kb.len && memcmp(ka.buf, kb.buf, ka.len) == 0);
    free(ka.buf);
    free(kb.buf);
}

/* The clinic is part of every lane key: control characters (the old
 * separator among them) and ids over 128 bytes are refused at validation. */
static void test_clinic_id_rules(void **state)
{
    (void)state;
    char long_id[PGS_CLINIC_ID_MAX + 2];
    memset(long_id, 'c', sizeof(long_id) - 1);
    long_id[PGS_CLINIC_ID_MAX] = '\0';
    assert_true(pgs_command_clinic_id_valid(long_id)); /* exactly 128 bytes */
    long_id[PGS_CLINIC_ID_MAX] = 'c';
    long_id[PGS_CLINIC_ID_MAX + 1] = '\0';
    assert_false(pgs_command_clinic_id_valid(long_id));
    assert_true(pgs_command_clinic_id_valid("clinic-0001"));
    assert_true(pgs_command_clinic_id_valid("Klinik Zürich"));
    assert_false(pgs_command_clinic_id_valid(""));
    assert_false(pgs_command_clinic_id_valid(NULL));
    assert_false(pgs_command_clinic_id_valid("A\x1fpatients\x1fx"));
    assert_false(pgs_command_clinic_id_valid("a\nb"));
    assert_false(pgs_command_clinic_id_valid("a\x7f"));

    /* and validation refuses such a command before anything else */
    tcmd_t t;
    tcmd_str(&t, "A\x1fnotes\x1fx", "notes", "ref", "R");
    char errstr[256];
    const pgs_entity_t *ent = NULL;
    assert_int_equal(pgs_catalog_validate(cat, &t.cmd, &ent, errstr, sizeof(errstr)),
                     PGS_E_VALIDATE_BAD_CLINIC_ID);
    assert_null(strchr(errstr, '\x1f')); /* the id itself is not echoed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separator_in_clinic_is_two_lanes),
        cmocka_unit_test(test_long_clinics_are_two_lanes),
        cmocka_unit_test(test_lane_belongs_to_one_clinic),
        cmocka_unit_test(test_uuid_spellings_share_a_lane),
        cmocka_unit_test(test_integer_spellings_share_a_lane),
        cmocka_unit_test(test_keyform),
        cmocka_unit_test(test_audit_lane_names_the_clinic),
        cmocka_unit_test(test_clinic_id_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
