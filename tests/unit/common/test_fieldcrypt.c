/* Unit tests: the keyring file (format, refusals, rotation, save/load) and
 * AES-256-GCM envelopes bound to clinic, entity, column and row key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fieldcrypt.h"
#include "common/keyring.h"

/* 32 bytes each: "0123456789abcdef0123456789abcdef", 32 x 'A', 32 x 'B'. */
#define K1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K2 "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define K3 "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="

static const char RING[] = "# test keyring\n"
                           "key 1 field * " K1 "\n"
                           "key 2 field * " K2 " current\n"
                           "key 3 field c-7 " K3 " current   # clinic 7's own key\n"
                           "key 9 pseudonym * " K1 " current\n";

static PgsKeyring *ring_of(const char *text)
{
    PgsKeyring *r = NULL;
    char err[256];
    assert_int_equal(pgs_keyring_parse(text, &r, err, sizeof err), 0);
    return r;
}

static void expect_refused(const char *text, const char *reason)
{
    PgsKeyring *r = NULL;
    char err[256] = "";
    assert_int_equal(pgs_keyring_parse(text, &r, err, sizeof err), -1);
    assert_null(r);
    if (!strstr(err, reason))
        fail_msg("error '%s' lacks '%s'", err, reason);
    /* The refusal never repeats key material. */
    assert_null(strstr(err, "MDEyMzQ1"));
    assert_null(strstr(err, "QUFB"));
}

static void test_parse_and_current(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    assert_int_equal(r->n, 4);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, "c-1")->id, 2);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, NULL)->id, 2);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, "c-7")->id, 3);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_PSEUDONYM, "c-7")->id, 9);
    assert_memory_equal(pgs_keyring_find(r, 1)->bytes, "0123456789abcdef0123456789abcdef", 32);
    assert_string_equal(pgs_keyring_find(r, 3)->clinic, "c-7");
    assert_null(pgs_keyring_find(r, 4));
    pgs_keyring_free(r);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("key 1 field * " K1 "\n", "current keys");
    expect_refused("key 1 field * " K1 " current\nkey 2 field * " K2 " current\n", "current keys");
    expect_refused("key 1 field * " K1 " current\nkey 1 field c " K2 " current\n", "twice");
    expect_refused("key 0 field * " K1 " current\n", "line 1: id");
    expect_refused("key x field * " K1 " current\n", "line 1: id");
    expect_refused("\nkey 1 secret * " K1 " current\n", "line 2: purpose");
    expect_refused("key 1 field * MDEy current\n", "base64 of 32 bytes");
    expect_refused("key 1 field * " K1 " newest\n", "may only be current");
    expect_refused("token 1 field * " K1 "\n", "expected: key");
}

static void test_file_mode_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/pgs-keyring-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, RING, sizeof RING - 1), (ssize_t)(sizeof RING - 1));
    close(fd);
    PgsKeyring *r = NULL;
    char err[512];
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(pgs_keyring_load(path, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(pgs_keyring_load(path, &r, err, sizeof err), 0);
    assert_int_equal(r->n, 4);
    pgs_keyring_free(r);
    unlink(path);
}

static void test_rotate_save_load(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    char err[256];
    uint32_t id = pgs_keyring_rotate(r, PGS_KEY_FIELD, NULL, err, sizeof err);
    assert_int_equal(id, 10);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, "c-1")->id, 10);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, "c-7")->id, 3);
    assert_false(pgs_keyring_find(r, 2)->current);
    assert_int_equal(pgs_keyring_rotate(r, PGS_KEY_FIELD, "c-7", err, sizeof err), 11);
    assert_int_equal(pgs_keyring_current(r, PGS_KEY_FIELD, "c-7")->id, 11);

    char dir[] = "/tmp/pgs-keyring-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/keyring", dir);
    assert_int_equal(pgs_keyring_save(r, path, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    PgsKeyring *back = NULL;
    assert_int_equal(pgs_keyring_load(path, &back, err, sizeof err), 0);
    assert_int_equal(back->n, r->n);
    for (size_t i = 0; i < r->n; i++) {
        const PgsKey *k = pgs_keyring_find(back, r->keys[i].id);
        assert_non_null(k);
        assert_memory_equal(k->bytes, r->keys[i].bytes, PGS_KEY_BYTES);
        assert_int_equal(k->current, r->keys[i].current);
    }
    pgs_keyring_free(back);
    pgs_keyring_free(r);
    unlink(path);
    rmdir(dir);
}

static const PgsFieldContext CTX = {"c-1", "clinic.patients", "given_name", "{\"id\":\"7d3c\"}"};

static void test_round_trip_and_header(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    const PgsKey *k = pgs_keyring_current(r, PGS_KEY_FIELD, "c-1");
    unsigned char env[64 + PGS_ENVELOPE_OVERHEAD], out[64 + PGS_ENVELOPE_OVERHEAD];
    size_t n = pgs_field_encrypt(k, &CTX, "PHI-MARKER-Alex", 15, env);
    assert_int_equal(n, 15 + PGS_ENVELOPE_OVERHEAD);
    assert_int_equal(env[0], PGS_ENVELOPE_V1);
    assert_int_equal(pgs_envelope_key_id(env, n), 2);
    assert_null(memmem(env, n, "PHI-MARKER", 10));
    size_t plain = 0;
    char err[256];
    assert_int_equal(pgs_field_decrypt(r, &CTX, env, n, out, &plain, err, sizeof err), 15);
    assert_int_equal(plain, 15);
    assert_memory_equal(out, "PHI-MARKER-Alex", 15);
    /* Two encryptions of one value differ (random nonce). */
    unsigned char env2[64 + PGS_ENVELOPE_OVERHEAD];
    assert_int_equal(pgs_field_encrypt(k, &CTX, "PHI-MARKER-Alex", 15, env2), n);
    assert_memory_not_equal(env, env2, n);
    /* The empty value round-trips too. */
    n = pgs_field_encrypt(k, &CTX, "", 0, env);
    assert_int_equal(n, PGS_ENVELOPE_OVERHEAD);
    assert_int_equal(pgs_field_decrypt(r, &CTX, env, n, out, &plain, err, sizeof err), 0);
    pgs_keyring_free(r);
}

static void expect_fail(const PgsKeyring *r, const PgsFieldContext *ctx, const unsigned char *env,
                        size_t n, const char *reason)
{
    unsigned char out[128];
    size_t plain = 0;
    char err[256] = "";
    assert_int_equal(pgs_field_decrypt(r, ctx, env, n, out, &plain, err, sizeof err), -1);
    if (!strstr(err, reason))
        fail_msg("error '%s' lacks '%s'", err, reason);
}

static void test_bound_to_place(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    unsigned char env[64 + PGS_ENVELOPE_OVERHEAD];
    size_t n =
        pgs_field_encrypt(pgs_keyring_current(r, PGS_KEY_FIELD, "c-1"), &CTX, "Alex", 4, env);
    PgsFieldContext other = CTX;
    other.row_key = "{\"id\":\"9e9e\"}";
    expect_fail(r, &other, env, n, "authentication failed");
    other = CTX;
    other.column = "family_name";
    expect_fail(r, &other, env, n, "authentication failed");
    other = CTX;
    other.clinic = "c-2";
    expect_fail(r, &other, env, n, "authentication failed");
    other = CTX;
    other.entity = "clinic.encounters";
    expect_fail(r, &other, env, n, "authentication failed");
    /* A flipped ciphertext or tag byte, a rewritten key id, a short value. */
    unsigned char bad[sizeof env];
    memcpy(bad, env, n);
    bad[PGS_ENVELOPE_HEADER] ^= 1;
    expect_fail(r, &CTX, bad, n, "authentication failed");
    memcpy(bad, env, n);
    bad[n - 1] ^= 0x80;
    expect_fail(r, &CTX, bad, n, "authentication failed");
    memcpy(bad, env, n);
    bad[4] = 1; /* key id 2 -> 1: a real key, but not the one used */
    expect_fail(r, &CTX, bad, n, "authentication failed");
    bad[4] = 77;
    expect_fail(r, &CTX, bad, n, "key id 77 is not a field key");
    bad[4] = 9;
    expect_fail(r, &CTX, bad, n, "key id 9 is not a field key");
    memcpy(bad, env, n);
    bad[0] = 2;
    expect_fail(r, &CTX, bad, n, "unknown envelope version 2");
    expect_fail(r, &CTX, env, 10, "not an encrypted value");
    assert_int_equal(pgs_envelope_key_id(env, 10), 0);

    /* A clinic's own key opens only that clinic's values. */
    PgsFieldContext c7 = CTX;
    c7.clinic = "c-7";
    n = pgs_field_encrypt(pgs_keyring_current(r, PGS_KEY_FIELD, "c-7"), &c7, "Sam", 3, env);
    assert_int_equal(pgs_envelope_key_id(env, n), 3);
    PgsFieldContext c1 = c7;
    c1.clinic = "c-1";
    expect_fail(r, &c1, env, n, "belongs to another clinic");
    pgs_keyring_free(r);
}

static void test_crypto_shred(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    PgsFieldContext c7 = CTX;
    c7.clinic = "c-7";
    unsigned char env[64 + PGS_ENVELOPE_OVERHEAD];
    size_t n = pgs_field_encrypt(pgs_keyring_current(r, PGS_KEY_FIELD, "c-7"), &c7, "Sam", 3, env);
    pgs_keyring_free(r);
    /* The same keyring without clinic 7's key: its values are gone. */
    r = ring_of("key 1 field * " K1 "\nkey 2 field * " K2 " current\n");
    expect_fail(r, &c7, env, n, "key id 3 is not a field key");
    pgs_keyring_free(r);
}

static void test_pseudonym(void **state)
{
    (void)state;
    PgsKeyring *r = ring_of(RING);
    const PgsKey *p = pgs_keyring_current(r, PGS_KEY_PSEUDONYM, NULL);
    unsigned char a[PGS_PSEUDONYM_BYTES], b[PGS_PSEUDONYM_BYTES], c[PGS_PSEUDONYM_BYTES];
    assert_int_equal(pgs_pseudonym(p, "clinic.patients", "mrn", "MRN-1", 5, a), 0);
    assert_int_equal(pgs_pseudonym(p, "clinic.patients", "mrn", "MRN-1", 5, b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(pgs_pseudonym(p, "clinic.patients", "mrn", "MRN-2", 5, c), 0);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(pgs_pseudonym(p, "clinic.patients", "phone", "MRN-1", 5, c), 0);
    assert_memory_not_equal(a, c, sizeof a);
    /* A field key is not a pseudonym key. */
    assert_int_equal(pgs_pseudonym(pgs_keyring_find(r, 2), "e", "c", "v", 1, c), -1);
    pgs_keyring_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_current),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_file_mode_refused),     cmocka_unit_test(test_rotate_save_load),
        cmocka_unit_test(test_round_trip_and_header), cmocka_unit_test(test_bound_to_place),
        cmocka_unit_test(test_crypto_shred),          cmocka_unit_test(test_pseudonym),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
