/* Unit tests: the audit-event batch statement and its parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sql/auditsql.h"

static pgs_audit_event_t event(const char *id, const char *clinic)
{
    pgs_audit_event_t ev = {0};
    ev.event_id = id;
    ev.clinic_id = clinic;
    ev.actor = "dr-1";
    ev.action = "READ";
    ev.resource_type = "patients";
    ev.resource_id = "r1";
    ev.outcome = "SUCCESS";
    ev.occurred_at_ms = 1764633600000;
    ev.source = "ehr";
    return ev;
}

/* Every row passes its own clinic to audit.append_events, which refuses
 * (PS003) one that is not the transaction's: the batch's first clinic is
 * never bound for all rows. */
static void test_rows_carry_their_clinic(void **state)
{
    (void)state;
    const char *sql = pgs_auditsql_statement();
    assert_non_null(strstr(sql, "SELECT audit.append_events($1::text[], $2::uuid[]"));
    assert_non_null(strstr(sql, "$17::text[])"));

    pgs_audit_event_t a = event("0b3c0f4e-0000-4000-8000-000000000001", "clinic-a");
    pgs_audit_event_t b = event("0b3c0f4e-0000-4000-8000-000000000002", "clinic-b");
    const pgs_audit_event_t *evs[2] = {&a, &b};
    int32_t parts[2] = {1, 2};
    int64_t offs[2] = {10, 11};
    pgs_batch_params_t p;
    pgs_auditsql_params(evs, parts, offs, 2, "clinic.audit", &p);
    assert_int_equal(p.n, PGS_AUDITSQL_NPARAMS);
    assert_string_equal(p.values[0], "{\"clinic-a\",\"clinic-b\"}");
    /* AuditEvent v2's optional fields and the trace: NULL, not "" */
    assert_string_equal(p.values[13], "{NULL,NULL}");
    assert_string_equal(p.values[16], "{NULL,NULL}");
    pgs_sqlbatch_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_carry_their_clinic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
