/* Unit tests: sealed dead-letter values, bound to the clinic and the source
 * topic, partition and offset; the key chosen per clinic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/dlqseal.h"

#define K1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K2 "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

static const char RING[] = "key 1 field * " K1 " current\n"
                           "key 5 field c-7 " K2 " current\n";

static const char MSG[] = "{\"data\":{\"name\":\"PHI-MARKER-Ada\"}}";

static PgsKeyring *ring_of(const char *text)
{
    PgsKeyring *r = NULL;
    char err[256];
    assert_int_equal(pgs_keyring_parse(text, &r, err, sizeof err), 0);
    return r;
}

static void test_context(void **state)
{
    (void)state;
    char rk[PGS_DLQ_ROW_KEY_BYTES];
    PgsFieldContext ctx;
    assert_int_equal(pgs_dlq_context(&ctx, "c-1", "clinic.commands", 3, 1234567890123LL, rk), 0);
    assert_string_equal(ctx.clinic, "c-1");
    assert_string_equal(ctx.entity, "pgscribe.dead_letter");
    assert_string_equal(ctx.column, "value");
    assert_memory_equal(ctx.row_key,
                        "clinic.commands\x1f"
                        "3\x1f"
                        "1234567890123",
                        31);
    assert_int_equal(strlen(ctx.row_key), 31);
    assert_int_equal(pgs_dlq_context(&ctx, NULL, "t", 0, 0, rk), 0);
    assert_string_equal(ctx.clinic, "");
    char longtopic[400];
    memset(longtopic, 'x', sizeof longtopic - 1);
    longtopic[sizeof longtopic - 1] = '\0';
    assert_int_equal(pgs_dlq_context(&ctx, "c", longtopic, 0, 0, rk), -1);
}

static void test_seal_open(void **state)
{
    (void)state;
    PgsKeyring *ring = ring_of(RING);
    unsigned char *env, *plain;
    size_t env_len, plain_len;
    char err[256];
    /* unknown clinic: the "*" key */
    assert_int_equal(pgs_dlq_seal(ring, "", "t", 0, 41, MSG, strlen(MSG), &env, &env_len), 1);
    assert_int_equal(env_len, strlen(MSG) + PGS_ENVELOPE_OVERHEAD);
    assert_null(memmem(env, env_len, "PHI-MARKER", 10));
    assert_int_equal(pgs_envelope_key_id(env, env_len), 1);
    assert_int_equal(
        pgs_dlq_open(ring, "", "t", 0, 41, env, env_len, &plain, &plain_len, err, sizeof err), 0);
    assert_int_equal(plain_len, strlen(MSG));
    assert_memory_equal(plain, MSG, plain_len);
    free(plain);
    /* moved to another offset, partition, topic or clinic */
    assert_int_equal(
        pgs_dlq_open(ring, "", "t", 0, 42, env, env_len, &plain, &plain_len, err, sizeof err), -1);
    assert_non_null(strstr(err, "authentication failed"));
    assert_null(plain);
    assert_int_equal(
        pgs_dlq_open(ring, "", "t", 1, 41, env, env_len, &plain, &plain_len, err, sizeof err), -1);
    assert_int_equal(
        pgs_dlq_open(ring, "", "u", 0, 41, env, env_len, &plain, &plain_len, err, sizeof err), -1);
    assert_int_equal(
        pgs_dlq_open(ring, "c-2", "t", 0, 41, env, env_len, &plain, &plain_len, err, sizeof err),
        -1);
    /* tampered */
    env[PGS_ENVELOPE_HEADER + 2] ^= 1;
    assert_int_equal(
        pgs_dlq_open(ring, "", "t", 0, 41, env, env_len, &plain, &plain_len, err, sizeof err), -1);
    assert_non_null(strstr(err, "authentication failed"));
    free(env);

    /* a clinic with keys of its own uses them; another clinic cannot open it */
    assert_int_equal(pgs_dlq_seal(ring, "c-7", "t", 2, 7, MSG, strlen(MSG), &env, &env_len), 5);
    assert_int_equal(
        pgs_dlq_open(ring, "c-7", "t", 2, 7, env, env_len, &plain, &plain_len, err, sizeof err), 0);
    free(plain);
    assert_int_equal(
        pgs_dlq_open(ring, "c-8", "t", 2, 7, env, env_len, &plain, &plain_len, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "another clinic"));
    /* without the key: the id is named, nothing else */
    PgsKeyring *other = ring_of("key 1 field * " K1 " current\n");
    assert_int_equal(
        pgs_dlq_open(other, "c-7", "t", 2, 7, env, env_len, &plain, &plain_len, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "5"));
    assert_null(strstr(err, "PHI"));
    assert_int_equal(
        pgs_dlq_open(NULL, "c-7", "t", 2, 7, env, env_len, &plain, &plain_len, err, sizeof err),
        -1);
    free(env);
    pgs_keyring_free(other);

    /* no keyring, or no field key: nothing sealed (the value stays in clear) */
    assert_int_equal(pgs_dlq_seal(NULL, "c", "t", 0, 0, MSG, strlen(MSG), &env, &env_len), 0);
    assert_null(env);
    PgsKeyring *pseud = ring_of("key 9 pseudonym * " K1 " current\n");
    assert_null(pgs_dlq_seal_key(pseud, "c"));
    assert_int_equal(pgs_dlq_seal(pseud, "c", "t", 0, 0, MSG, strlen(MSG), &env, &env_len), 0);
    pgs_keyring_free(pseud);
    /* an empty value seals and opens */
    assert_int_equal(pgs_dlq_seal(ring, "", "t", 0, 1, "", 0, &env, &env_len), 1);
    assert_int_equal(
        pgs_dlq_open(ring, "", "t", 0, 1, env, env_len, &plain, &plain_len, err, sizeof err), 0);
    assert_int_equal(plain_len, 0);
    free(plain);
    free(env);
    pgs_keyring_free(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_seal_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
