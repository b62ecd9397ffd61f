/* Unit tests: the statement registry as a bounded LRU (statements.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sql/statements.h"

typedef struct {
    pgs_catalog_t *cat, *other;
    const pgs_entity_t *ent, *other_ent;
} fx_t;

static pgs_entity_t *make_entity(pgs_catalog_t *cat)
{
    pgs_entity_t *e = pgs_catalog_add_entity(cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    for (int i = 0; i < 12; i++) {
        char col[16];
        snprintf(col, sizeof(col), "c%d", i);
        pgs_catalog_entity_add_column(e, col, "text", 25, 0, 0, 0, 0);
    }
    return e;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->cat = pgs_catalog_new("clinic");
    fx->ent = make_entity(fx->cat);
    fx->other = pgs_catalog_new("clinic");
    fx->other_ent = make_entity(fx->other);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    pgs_catalog_free(fx->cat);
    pgs_catalog_free(fx->other);
    free(fx);
    return 0;
}

/* Shape number n: an UPDATE of the columns of n's bits. @p hash is given so
 * a test can make shapes collide in the index on purpose. */
static pgs_shape_t shape(const pgs_entity_t *ent, unsigned n, uint64_t hash)
{
    pgs_shape_t s;
    memset(&s, 0, sizeof(s));
    s.ent = ent;
    s.op = PGS_OP_UPDATE;
    for (int b = 0; b < 12; b++) {
        if (n & (1u << b))
            s.cols[s.ncols++] = 2 + b;
    }
    s.hash = hash;
    return s;
}

/* However many shapes come, at most max are held; the most recent stay and
 * keep their handles, older handles read as gone, and no serial (the name
 * on the server) is ever given twice. */
static void test_bounded_and_recent_kept(void **state)
{
    fx_t *fx = *state;
    pgs_stmts_t *st = pgs_statements_new("clinic", 16);
    int h[100];
    uint64_t serials[100];
    for (unsigned n = 0; n < 100; n++) {
        pgs_statements_epoch(st);
        pgs_shape_t s = shape(fx->ent, n + 1, n * 2654435761u);
        h[n] = pgs_statements_single(st, &s);
        pgs_stmt_t *e = pgs_statements_get(st, h[n]);
        assert_non_null(e);
        assert_non_null(e->sql);
        serials[n] = e->serial;
        for (unsigned k = 0; k < n; k++)
            assert_true(serials[k] != serials[n]);
        assert_true(pgs_statements_count(st) <= 16);
    }
    assert_int_equal(pgs_statements_count(st), 16);
    assert_int_equal(pgs_statements_evicted(st), 84);
    for (unsigned n = 0; n < 84; n++)
        assert_null(pgs_statements_get(st, h[n]));
    for (unsigned n = 84; n < 100; n++) {
        pgs_statements_epoch(st);
        pgs_shape_t s = shape(fx->ent, n + 1, n * 2654435761u);
        assert_int_equal(pgs_statements_single(st, &s), h[n]);
    }
    assert_int_equal(pgs_statements_evicted(st), 84);
    /* the slot of an evicted handle holds another serial now */
    assert_true(pgs_statements_slot_serial(st, pgs_statements_slot(h[0])) != serials[0]);
    pgs_statements_free(st);
}

/* Least recently USED goes, not least recently added. */
static void test_use_refreshes(void **state)
{
    fx_t *fx = *state;
    pgs_stmts_t *st = pgs_statements_new("clinic", 4);
    int h[5];
    for (unsigned n = 0; n < 4; n++) {
        pgs_statements_epoch(st);
        pgs_shape_t s = shape(fx->ent, n + 1, n);
        h[n] = pgs_statements_single(st, &s);
    }
    pgs_statements_epoch(st);
    pgs_shape_t s0 = shape(fx->ent, 1, 0);
    assert_int_equal(pgs_statements_single(st, &s0), h[0]);
    pgs_statements_epoch(st);
    pgs_shape_t s4 = shape(fx->ent, 5, 4);
    h[4] = pgs_statements_single(st, &s4);
    assert_non_null(pgs_statements_get(st, h[0]));
    assert_null(pgs_statements_get(st, h[1]));
    assert_non_null(pgs_statements_get(st, h[2]));
    assert_non_null(pgs_statements_get(st, h[4]));
    pgs_statements_free(st);
}

/* Statements used in the current epoch (the transaction being built) are
 * never evicted: the bound gives way for one transaction, and is restored
 * at the next epoch's first registration. */
static void test_epoch_protects(void **state)
{
    fx_t *fx = *state;
    pgs_stmts_t *st = pgs_statements_new("clinic", 4);
    int h[10];
    pgs_statements_epoch(st);
    for (unsigned n = 0; n < 10; n++) {
        pgs_shape_t s = shape(fx->ent, n + 1, n);
        h[n] = pgs_statements_single(st, &s);
    }
    assert_int_equal(pgs_statements_count(st), 10);
    for (unsigned n = 0; n < 10; n++)
        assert_non_null(pgs_statements_get(st, h[n]));
    pgs_statements_epoch(st);
    pgs_shape_t s = shape(fx->ent, 100, 100);
    pgs_statements_single(st, &s);
    assert_int_equal(pgs_statements_count(st), 4);
    pgs_statements_free(st);
}

/* Every shape in one index bucket: evicting from the middle of a probe run
 * leaves the rest findable (each found again, none registered twice). */
static void test_colliding_hashes(void **state)
{
    fx_t *fx = *state;
    pgs_stmts_t *st = pgs_statements_new("clinic", 8);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned n = 0; n < 20; n++) {
            pgs_statements_epoch(st);
            pgs_shape_t s = shape(fx->ent, n + 1, 7 + (n % 3) * 256);
            int h = pgs_statements_single(st, &s);
            size_t before = pgs_statements_count(st);
            uint64_t ev = pgs_statements_evicted(st);
            assert_int_equal(pgs_statements_single(st, &s), h);
            assert_int_equal(pgs_statements_count(st), before);
            assert_int_equal(pgs_statements_evicted(st), ev);
        }
        /* the last 8 are all there */
        uint64_t ev = pgs_statements_evicted(st);
        for (unsigned n = 12; n < 20; n++) {
            pgs_statements_epoch(st);
            pgs_shape_t s = shape(fx->ent, n + 1, 7 + (n % 3) * 256);
            pgs_statements_single(st, &s);
        }
        assert_int_equal(pgs_statements_evicted(st), ev);
    }
    pgs_statements_free(st);
}

/* A retired catalog's shapes go at once; the other catalog's stay. */
static void test_drop_catalog(void **state)
{
    fx_t *fx = *state;
    pgs_stmts_t *st = pgs_statements_new("clinic", 64);
    int mine[5], theirs[5];
    for (unsigned n = 0; n < 5; n++) {
        pgs_shape_t a = shape(fx->ent, n + 1, n);
        pgs_shape_t b = shape(fx->other_ent, n + 1, n);
        mine[n] = pgs_statements_single(st, &a);
        theirs[n] = pgs_statements_single(st, &b);
    }
    assert_int_equal(pgs_statements_drop_catalog(st, fx->other), 5);
    assert_int_equal(pgs_statements_count(st), 5);
    for (unsigned n = 0; n < 5; n++) {
        assert_non_null(pgs_statements_get(st, mine[n]));
        assert_null(pgs_statements_get(st, theirs[n]));
    }
    pgs_statements_free(st);
}

static void test_names(void **state)
{
    (void)state;
    char buf[32];
    pgs_statements_name((7u << 1) | 1, buf, sizeof(buf));
    assert_string_equal(buf, "pgs_b7");
    pgs_statements_name(7u << 1, buf, sizeof(buf));
    assert_string_equal(buf, "pgs_s7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bounded_and_recent_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_use_refreshes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_protects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colliding_hashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_catalog, setup, teardown),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
