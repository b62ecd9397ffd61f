/* Unit tests: masking one value for a masked copy (pseudonym as uuid or hex,
 * year, null, keep) and COPY text fields that read back byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/copytext.h"
#include "common/keyring.h"
#include "common/mask.h"

#define K1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K2 "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

static PgsKeyring *ring;

static int setup(void **state)
{
    (void)state;
    char err[256];
    return pgs_keyring_parse("key 1 pseudonym * " K1 " current\n"
                             "key 2 pseudonym * " K2 "\n"
                             "key 3 field * " K2 " current\n",
                             &ring, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    pgs_keyring_free(ring);
    return 0;
}

static const char *masked(pgs_mask_t m, pgs_mask_form_t f, const PgsKey *k, const char *entity,
                          const char *column, const char *v, int *rc)
{
    static char out[PGS_MASK_MAX_OUT];
    size_t n = 99;
    *rc = pgs_mask_value(m, f, k, entity, column, v, strlen(v), out, &n);
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_names(void **state)
{
    (void)state;
    const char *names[] = {"pseudonym", "year", "null", "keep"};
    for (int i = 0; i < 4; i++) {
        pgs_mask_t m;
        assert_int_equal(pgs_mask_parse(names[i], &m), 0);
        assert_string_equal(pgs_mask_name(m), names[i]);
    }
    pgs_mask_t m;
    assert_int_equal(pgs_mask_parse("hash", &m), -1);
    assert_int_equal(pgs_mask_parse(NULL, &m), -1);
}

static void test_pseudonym(void **state)
{
    (void)state;
    const PgsKey *k = pgs_keyring_find(ring, 1), *k2 = pgs_keyring_find(ring, 2);
    int rc;
    char a[PGS_MASK_MAX_OUT], b[PGS_MASK_MAX_OUT];
    strcpy(a,
           masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, k, "clinic.patients", "mrn", "MRN-1", &rc));
    assert_int_equal(rc, 1);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_null(strstr(a, "MRN"));
    /* deterministic: equal inputs stay equal */
    assert_string_equal(
        masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, k, "clinic.patients", "mrn", "MRN-1", &rc), a);
    /* separated by value, by domain and by key */
    assert_string_not_equal(
        masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, k, "clinic.patients", "mrn", "MRN-2", &rc), a);
    assert_string_not_equal(
        masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, k, "clinic.patients", "phone", "MRN-1", &rc),
        a);
    assert_string_not_equal(
        masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, k2, "clinic.patients", "mrn", "MRN-1", &rc),
        a);
    /* a uuid: 8-4-4-4-12, version 8, RFC 4122 variant; the same domain and
     * value give the same uuid wherever the column is (a reference joins) */
    const char *id = "7f3c1e2a-0000-4000-8000-000000000001";
    strcpy(b, masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_UUID, k, "clinic.patients", "id", id, &rc));
    assert_int_equal(rc, 1);
    assert_int_equal(strlen(b), 36);
    assert_true(b[8] == '-' && b[13] == '-' && b[18] == '-' && b[23] == '-');
    assert_int_equal(b[14], '8');
    assert_non_null(strchr("89ab", b[19]));
    assert_string_not_equal(b, id);
    assert_string_equal(
        masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_UUID, k, "clinic.patients", "id", id, &rc), b);
    /* no key, or a key of the wrong purpose: an error, never the clear value */
    masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, NULL, "clinic.patients", "mrn", "MRN-1", &rc);
    assert_int_equal(rc, -1);
    const char *o = masked(PGS_MASK_PSEUDONYM, PGS_MASK_AS_TEXT, pgs_keyring_find(ring, 3),
                           "clinic.patients", "mrn", "MRN-1", &rc);
    assert_int_equal(rc, -1);
    assert_string_equal(o, "");
}

static void test_year_null_keep(void **state)
{
    (void)state;
    int rc;
    assert_string_equal(masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "1980-05-17", &rc), "1980-01-01");
    assert_int_equal(rc, 1);
    assert_string_equal(masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "2024-03-01 10:11:12.5+00", &rc),
                        "2024-01-01 00:00:00+00");
    assert_string_equal(masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "2024-03-01 10:11:12-05:30", &rc),
                        "2024-01-01 00:00:00-05:30");
    assert_string_equal(masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "2024-03-01 10:11:12", &rc),
                        "2024-01-01 00:00:00");
    /* a value that does not start with a 4-digit year is dropped, not kept */
    masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "17/05/1980", &rc);
    assert_int_equal(rc, 0);
    masked(PGS_MASK_YEAR, 0, NULL, "e", "c", "198", &rc);
    assert_int_equal(rc, 0);
    masked(PGS_MASK_NULL, 0, NULL, "e", "c", "anything", &rc);
    assert_int_equal(rc, 0);
    masked(PGS_MASK_KEEP, 0, NULL, "e", "c", "kept", &rc);
    assert_int_equal(rc, 2);
}

/* COPY text reads back: the escapes PostgreSQL's COPY FROM decodes. */
static size_t copy_decode(const char *f, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '\\') {
            out[o++] = f[i];
            continue;
        }
        char c = f[++i];
        out[o++] = c == 't'   ? '\t'
                   : c == 'n' ? '\n'
                   : c == 'r' ? '\r'
                   : c == 'b' ? '\b'
                   : c == 'f' ? '\f'
                   : c == 'v' ? '\v'
                              : c;
    }
    return o;
}

static void test_copytext(void **state)
{
    (void)state;
    const char v[] = "a\\b\tc\nd\re\bf\fg\vh \"quoted\" 'x' \xc3\xa9";
    pgs_sbuf_t sb = {0};
    pgs_copytext_field(&sb, v, sizeof(v) - 1);
    /* no raw delimiter or line end is left in the field */
    assert_null(memchr(sb.buf, '\t', sb.len));
    assert_null(memchr(sb.buf, '\n', sb.len));
    assert_null(memchr(sb.buf, '\r', sb.len));
    char back[128];
    size_t n = copy_decode(sb.buf, sb.len, back);
    assert_int_equal(n, sizeof(v) - 1);
    assert_memory_equal(back, v, n);
    sb.len = 0;
    pgs_copytext_field(&sb, NULL, 0);
    assert_int_equal(sb.len, 2);
    assert_memory_equal(sb.buf, "\\N", 2);
    /* a field that is "\N" itself is not read as NULL */
    sb.len = 0;
    pgs_copytext_field(&sb, "\\N", 2);
    assert_int_equal(sb.len, 3);
    assert_memory_equal(sb.buf, "\\\\N", 3);
    sb.len = 0;
    pgs_copytext_field(&sb, "", 0);
    assert_int_equal(sb.len, 0);
    free(sb.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_pseudonym),
        cmocka_unit_test(test_year_null_keep),
        cmocka_unit_test(test_copytext),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
