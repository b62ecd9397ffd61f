/* Unit tests: the whole SQLSTATE → class table, and the error code list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/error.h"

#define T  PGS_E_DB_TRANSIENT
#define P  PGS_E_DB_PERMANENT
#define R  PGS_E_TENANT_RLS
#define RP PGS_E_DB_ROW_PRECONDITION
#define KR PGS_E_IDEMPOTENCY_KEY_REUSED

static const char RLS_MSG[] = "new row violates row-level security policy for table \"patients\"";
static const char GRANT_MSG[] = "permission denied for table patients";

/* Every class of PostgreSQL's errcodes.txt, and each code pgscribe treats
 * apart from its class. outage: pauses and feeds the breaker, spends no
 * attempt. */
static const struct {
    const char *state;
    const char *msg;
    pgs_err_t err;
    int outage;
} table[] = {
    /* connection exceptions: the database is unreachable */
    {"08000", NULL, T, 1},
    {"08003", NULL, T, 1},
    {"08006", NULL, T, 1},
    {"08001", NULL, T, 1},
    {"08004", NULL, T, 1},
    {"08007", NULL, T, 1},
    {"08P01", NULL, T, 1},
    {NULL, NULL, T, 1}, /* no SQLSTATE at all: the connection went */
    {"", NULL, T, 1},
    {"0800", NULL, T, 1},
    /* read-only: a standby, a demoted primary, default_transaction_read_only */
    {"25006", NULL, T, 1},
    {"25001", NULL, P, 0},
    {"25P02", NULL, P, 0},
    /* insufficient resources: disk full, out of memory, too many connections */
    {"53000", NULL, T, 1},
    {"53100", NULL, T, 1},
    {"53200", NULL, T, 1},
    {"53300", NULL, T, 1},
    {"53400", NULL, T, 1},
    /* operator intervention */
    {"57000", NULL, P, 0},
    {"57014", NULL, T, 0}, /* statement_timeout: per command */
    {"57P01", NULL, T, 1},
    {"57P02", NULL, T, 1},
    {"57P03", NULL, T, 1},
    {"57P04", NULL, T, 1},
    {"57P05", NULL, T, 1},
    /* transaction rollback: per command, retried */
    {"40000", NULL, T, 0},
    {"40001", NULL, T, 0},
    {"40002", NULL, T, 0},
    {"40003", NULL, T, 0},
    {"40P01", NULL, T, 0},
    /* object not in prerequisite state */
    {"55000", NULL, P, 0},
    {"55006", NULL, T, 0},
    {"55P02", NULL, P, 0},
    {"55P03", NULL, T, 0}, /* lock_timeout */
    {"55P04", NULL, P, 0},
    /* system and internal errors */
    {"58000", NULL, T, 0},
    {"58030", NULL, T, 0},
    {"58P01", NULL, T, 0},
    {"XX000", NULL, T, 0},
    {"XX001", NULL, T, 0},
    {"XX002", NULL, T, 0},
    /* the command's own faults */
    {"22001", NULL, P, 0},
    {"22003", NULL, P, 0},
    {"22007", NULL, P, 0},
    {"22P02", NULL, P, 0},
    {"23502", NULL, P, 0},
    {"23503", NULL, P, 0},
    {"23505", NULL, P, 0},
    {"23514", NULL, P, 0},
    {"23P01", NULL, P, 0},
    {"42601", NULL, P, 0},
    {"42703", NULL, P, 0},
    {"42P01", NULL, P, 0},
    {"42804", NULL, P, 0},
    {"44000", NULL, P, 0},
    {"54000", NULL, P, 0},
    {"54001", NULL, P, 0},
    {"P0001", NULL, P, 0},
    {"0A000", NULL, P, 0},
    {"21000", NULL, P, 0},
    {"2BP01", NULL, P, 0},
    {"3D000", NULL, P, 0},
    {"3F000", NULL, P, 0},
    {"F0000", NULL, P, 0},
    {"HV000", NULL, P, 0},
    {"28000", NULL, P, 0},
    {"28P01", NULL, P, 0},
    /* 42501: RLS's WITH CHECK is a tenant violation, a missing GRANT the
     * configuration's fault */
    {"42501", RLS_MSG, R, 0},
    {"42501", GRANT_MSG, P, 0},
    {"42501", NULL, P, 0},
    /* pgscribe's own: no row matched, or its version differs */
    {PGS_SQLSTATE_ROW_PRECONDITION, NULL, RP, 0},
    /* pgscribe's own: a row of another clinic than the transaction's */
    {PGS_SQLSTATE_OTHER_CLINIC, NULL, PGS_E_TENANT_MISMATCH, 0},
    /* pgscribe's own: a recorded command id came with other content */
    {"PS002", NULL, KR, 0},
    {"PS009", NULL, P, 0}, /* a pgscribe code not assigned */
};

static void test_sqlstate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const char *s = table[i].state;
        pgs_err_t got = pgs_error_pg_classify(s, table[i].msg);
        if (got != table[i].err || pgs_error_sqlstate_is_outage(s) != table[i].outage)
            fail_msg("SQLSTATE %s (%s): class %s outage %d, want %s outage %d", s ? s : "(null)",
                     table[i].msg ? table[i].msg : "-", pgs_error_code(got),
                     pgs_error_sqlstate_is_outage(s), pgs_error_code(table[i].err),
                     table[i].outage);
        /* an outage is always transient: it must never dead-letter */
        if (table[i].outage)
            assert_true(pgs_error_is_transient(got));
    }
}

/* The message-less classifier never calls a missing GRANT a tenant fault. */
static void test_sqlstate_only(void **state)
{
    (void)state;
    assert_int_equal(pgs_error_sqlstate_classify("42501"), PGS_E_DB_PERMANENT);
    assert_int_equal(pgs_error_sqlstate_classify("25006"), PGS_E_DB_TRANSIENT);
    assert_int_equal(pgs_error_sqlstate_classify("23505"), PGS_E_DB_PERMANENT);
}

/* Every error has a code and a class, and codes are unique. */
static void test_error_list(void **state)
{
    (void)state;
    for (int e = 1; e < PGS_E__COUNT; e++) {
        const char *code = pgs_error_code((pgs_err_t)e);
        assert_non_null(code);
        assert_true(strlen(code) > 0);
        assert_true(strlen(code) < PGS_ERROR_CODE_MAX); /* dead letters hold it whole */
        assert_int_not_equal(pgs_error_class((pgs_err_t)e), PGS_ECLASS_NONE);
        assert_string_not_equal(pgs_error_class_name(pgs_error_class((pgs_err_t)e)), "unknown");
        for (int f = 1; f < e; f++)
            assert_string_not_equal(code, pgs_error_code((pgs_err_t)f));
    }
}

/* A reused command id is permanent, and its dead letter carries the
 * pgscribe code; other database errors keep their SQLSTATE. */
/* The audit trail's month without a partition: retried until one exists,
 * never a dead letter; the same SQLSTATE elsewhere stays permanent. */
static void test_audit_partition_missing(void **state)
{
    (void)state;
    const char *msg = "no partition of relation \"events\" found for row";
    assert_int_equal(pgs_error_pg_classify_in("23514", msg, "audit"), PGS_E_DB_TRANSIENT);
    assert_int_equal(pgs_error_pg_classify_in("23514", msg, "clinic"), PGS_E_DB_PERMANENT);
    assert_int_equal(pgs_error_pg_classify_in("23514", msg, NULL), PGS_E_DB_PERMANENT);
    assert_int_equal(pgs_error_pg_classify_in("23514",
                                              "new row for relation \"events\" violates "
                                              "check constraint",
                                              "audit"),
                     PGS_E_DB_PERMANENT);
    assert_int_equal(pgs_error_pg_classify_in("40P01", NULL, "audit"), PGS_E_DB_TRANSIENT);
}

static void test_reused_id(void **state)
{
    (void)state;
    assert_string_equal(PGS_SQLSTATE_IDEMPOTENCY_KEY_REUSED, "PS002");
    assert_string_equal(pgs_error_code(KR), "IDEMPOTENCY_KEY_REUSED");
    assert_int_equal(pgs_error_class(KR), PGS_ECLASS_DB_PERMANENT);
    assert_false(pgs_error_is_transient(KR));
    assert_true(pgs_error_dead_letter_by_code(KR));
    assert_false(pgs_error_dead_letter_by_code(RP));
    assert_false(pgs_error_dead_letter_by_code(P));
    assert_false(pgs_error_dead_letter_by_code(R));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlstate_table),
        cmocka_unit_test(test_sqlstate_only),
        cmocka_unit_test(test_error_list),
        cmocka_unit_test(test_reused_id),
        cmocka_unit_test(test_audit_partition_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
