/* The arena: allocations are zeroed and 16-byte aligned, fill the first
 * chunk (allocated with the arena) and then grow into new ones, an
 * allocation larger than any chunk gets one of its own, and one free
 * releases them all (ASan's build tells of any overrun or leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.h"

static void test_aligned_zeroed_and_growing(void **state)
{
    (void)state;
    pgs_arena_t *a = pgs_arena_new(256);
    unsigned char *prev = NULL;
    /* 100 x 40 bytes: well past the first chunk of 256 */
    for (int i = 0; i < 100; i++) {
        unsigned char *p = pgs_arena_alloc(a, 40);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (int k = 0; k < 40; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xab, 40); /* all 40 bytes are the caller's */
        assert_true(p != prev);
        prev = p;
    }
    /* larger than the chunks so far */
    unsigned char *big = pgs_arena_alloc(a, 100000);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 1, 100000);
    char *s = pgs_arena_strndup(a, "clinic-001/patients", 10);
    assert_string_equal(s, "clinic-001");
    assert_string_equal(pgs_arena_strdup(a, "x"), "x");
    pgs_arena_free(a);
}

static void test_first_chunk_whole(void **state)
{
    (void)state;
    /* the first chunk's every byte is usable, and a hint under the floor
     * is raised to it */
    pgs_arena_t *a = pgs_arena_new(1);
    unsigned char *p = pgs_arena_alloc(a, 256);
    memset(p, 7, 256);
    unsigned char *q = pgs_arena_alloc(a, 1);
    assert_true(q < p || q >= p + 256);
    pgs_arena_free(a);
    pgs_arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aligned_zeroed_and_growing),
        cmocka_unit_test(test_first_chunk_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
