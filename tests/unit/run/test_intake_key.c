/* Unit tests: the clinic part of a Kafka message key must be the body's clinic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "run/intake.h"

static int crosses(const char *key, const char *clinic, int audit)
{
    return pgs_intake_key_names_other_clinic(key, key ? strlen(key) : 0, clinic, audit);
}

static void test_command_keys(void **state)
{
    (void)state;
    /* the contract's form, own clinic */
    assert_int_equal(crosses("clinic-b/patients/7f1c", "clinic-b", 0), 0);
    assert_int_equal(crosses("clinic-b/", "clinic-b", 0), 0);
    /* another clinic named */
    assert_int_equal(crosses("clinic-a/patients/7f1c", "clinic-b", 0), 1);
    assert_int_equal(crosses("/patients/7f1c", "clinic-b", 0), 1);
    /* a prefix of the clinic id is not the clinic, nor is a longer one */
    assert_int_equal(crosses("clinic/patients/7f1c", "clinic-b", 0), 1);
    assert_int_equal(crosses("clinic-bb/patients/7f1c", "clinic-b", 0), 1);
    assert_int_equal(crosses("clinic-b", "clinic-bb", 0), 0); /* no '/': names no clinic */
    /* a clinic id holding a '/' is compared whole */
    assert_int_equal(crosses("north/7/patients/x", "north/7", 0), 0);
    assert_int_equal(crosses("north/patients/x", "north/7", 0), 1);
    /* no key, an empty key, a key without '/': no clinic named */
    assert_int_equal(crosses(NULL, "clinic-b", 0), 0);
    assert_int_equal(crosses("", "clinic-b", 0), 0);
    assert_int_equal(crosses("valid_avro", "clinic-b", 0), 0);
}

static void test_command_key_binary(void **state)
{
    (void)state;
    /* a NUL byte in the key: compared as bytes, not cut short */
    static const char key[] = "clinic-b\0/patients/x";
    assert_int_equal(pgs_intake_key_names_other_clinic(key, sizeof(key) - 1, "clinic-b", 0), 1);
    static const char own[] = "clinic-b/patients/\0x";
    assert_int_equal(pgs_intake_key_names_other_clinic(own, sizeof(own) - 1, "clinic-b", 0), 0);
}

static void test_audit_keys(void **state)
{
    (void)state;
    assert_int_equal(crosses("clinic-b", "clinic-b", 1), 0);
    assert_int_equal(crosses("clinic-b/anything", "clinic-b", 1), 0);
    assert_int_equal(crosses(NULL, "clinic-b", 1), 0);
    assert_int_equal(crosses("clinic-a", "clinic-b", 1), 1);
    assert_int_equal(crosses("clinic-bb", "clinic-b", 1), 1);
    assert_int_equal(crosses("clinic", "clinic-b", 1), 1);
    assert_int_equal(crosses("clinic-a/x", "clinic-b", 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_keys),
        cmocka_unit_test(test_command_key_binary),
        cmocka_unit_test(test_audit_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
