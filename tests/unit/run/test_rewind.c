/* Unit tests for the rewind after a restore: the database identity, the
 * recorded position and the rewind decision, against the scripted libpq
 * (harness_pq.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness_pq.h"
#include "run/rewind.h"

static void test_identity_parse(void **state)
{
    (void)state;
    pgs_rewind_identity_t id;
    assert_int_equal(pgs_rewind_identity_parse("7311522045618737170/3", &id), 0);
    assert_string_equal(id.system_identifier, "7311522045618737170");
    assert_int_equal(id.timeline, 3);
    assert_int_equal(pgs_rewind_identity_parse("-42/1", &id), 0);
    assert_string_equal(id.system_identifier, "-42");
    const char *bad[] = {"", "/1", "12", "12/", "12/0", "12/x", "1x/2", "12/2 ", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(pgs_rewind_identity_parse(bad[i], &id), -1);
    assert_int_equal(pgs_rewind_identity_parse(NULL, &id), -1);
}

static void test_identity_same(void **state)
{
    (void)state;
    pgs_rewind_identity_t a, b;
    assert_int_equal(pgs_rewind_identity_parse("7311522045618737170/1", &a), 0);
    assert_int_equal(pgs_rewind_identity_parse("7311522045618737170/1", &b), 0);
    assert_true(pgs_rewind_identity_same(&a, &b));
    /* a promotion or a point-in-time recovery: a new timeline */
    assert_int_equal(pgs_rewind_identity_parse("7311522045618737170/2", &b), 0);
    assert_false(pgs_rewind_identity_same(&a, &b));
    /* another cluster */
    assert_int_equal(pgs_rewind_identity_parse("7311522045618737171/1", &b), 0);
    assert_false(pgs_rewind_identity_same(&a, &b));
}

static void test_target(void **state)
{
    (void)state;
    /* a database that did not go back records the last committed command */
    assert_int_equal(pgs_rewind_target(100, 99), -1);
    /* ... or more than what was committed (applied, offset not yet committed) */
    assert_int_equal(pgs_rewind_target(100, 150), -1);
    /* the database ends before the committed offset: rewind past its record */
    assert_int_equal(pgs_rewind_target(100, 41), 42);
    assert_int_equal(pgs_rewind_target(100, 0), 1);
    assert_int_equal(pgs_rewind_target(100, 98), 99);
    /* nothing committed, or nothing recorded: keep */
    assert_int_equal(pgs_rewind_target(-1, 41), -1);
    assert_int_equal(pgs_rewind_target(100, -1), -1);
    assert_int_equal(pgs_rewind_target(0, -1), -1);
}

static void test_identity_query(void **state)
{
    (void)state;
    harness_pq_reset();
    char errstr[128];
    PGconn *pg = pgs_rewind_connect("host=harness", errstr, sizeof(errstr));
    assert_non_null(pg);
    pgs_rewind_identity_t id;
    harness_pq_script("row=7311522045618737170/2 err=42883 row=garbage");
    assert_int_equal(pgs_rewind_identity(pg, &id), 0);
    assert_string_equal(id.system_identifier, "7311522045618737170");
    assert_int_equal(id.timeline, 2);
    assert_non_null(strstr(harness_pq_log(), "EXECP SELECT system_identifier::text"));
    /* not migrated (undefined function), or an unexpected answer */
    assert_int_equal(pgs_rewind_identity(pg, &id), -1);
    assert_int_equal(pgs_rewind_identity(pg, &id), -1);
    assert_int_equal(harness_pq_left(), 0);
    PQfinish(pg);
}

static void test_recorded_query(void **state)
{
    (void)state;
    harness_pq_reset();
    char errstr[128];
    PGconn *pg = pgs_rewind_connect("host=harness", errstr, sizeof(errstr));
    assert_non_null(pg);
    harness_pq_script("row=41 row=-1 err=42501 row=x row=-7 lost");
    int64_t r = 0;
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 3, &r), 0);
    assert_int_equal(r, 41);
    assert_non_null(strstr(harness_pq_log(), "[clinic.commands] [3]"));
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 4, &r), 0);
    assert_int_equal(r, -1);
    r = 5;
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 5, &r), -1); /* no privilege */
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 5, &r), -1); /* not a number */
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 5, &r), -1); /* below -1 */
    assert_int_equal(pgs_rewind_recorded(pg, "clinic.commands", 5, &r), -1); /* connection lost */
    assert_int_equal(r, 5);
    PQfinish(pg);
}

static void test_connect_fails(void **state)
{
    (void)state;
    harness_pq_reset();
    harness_pq_fail_connects(1);
    char errstr[128] = "";
    assert_null(pgs_rewind_connect("host=harness", errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "unreachable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_parse), cmocka_unit_test(test_identity_same),
        cmocka_unit_test(test_target),         cmocka_unit_test(test_identity_query),
        cmocka_unit_test(test_recorded_query), cmocka_unit_test(test_connect_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
