/* Unit tests for the per-partition offset watermark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "run/offsets.h"

static void test_in_order(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();

    assert_int_equal(pgs_offsets_position(o), -1);
    assert_int_equal(pgs_offsets_committable(o), -1);
    for (int64_t i = 0; i < 5; i++)
        assert_int_equal(pgs_offsets_track(o, i), 0);
    assert_int_equal(pgs_offsets_pending(o), 5);
    assert_int_equal(pgs_offsets_incomplete(o), 5);
    for (int64_t i = 0; i < 5; i++) {
        assert_int_equal(pgs_offsets_done(o, i), 0);
        assert_int_equal(pgs_offsets_position(o), i + 1);
        assert_int_equal(pgs_offsets_committable(o), i + 1);
        assert_int_equal(pgs_offsets_committable(o), -1);
    }
    assert_int_equal(pgs_offsets_pending(o), 0);
    assert_int_equal(pgs_offsets_incomplete(o), 0);
    pgs_offsets_free(o);
}

static void test_reverse_completion(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();

    for (int64_t i = 100; i < 110; i++)
        assert_int_equal(pgs_offsets_track(o, i), 0);
    for (int64_t i = 109; i > 100; i--) {
        assert_int_equal(pgs_offsets_done(o, i), 0);
        assert_int_equal(pgs_offsets_position(o), -1);
        assert_int_equal(pgs_offsets_committable(o), -1);
    }
    assert_int_equal(pgs_offsets_pending(o), 10);
    assert_int_equal(pgs_offsets_incomplete(o), 1);
    assert_int_equal(pgs_offsets_done(o, 100), 0);
    assert_int_equal(pgs_offsets_position(o), 110);
    assert_int_equal(pgs_offsets_committable(o), 110);
    assert_int_equal(pgs_offsets_pending(o), 0);
    assert_int_equal(pgs_offsets_incomplete(o), 0);
    pgs_offsets_free(o);
}

static void test_gaps(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();

    assert_int_equal(pgs_offsets_track(o, 10), 0);
    assert_int_equal(pgs_offsets_track(o, 12), 0);
    assert_int_equal(pgs_offsets_track(o, 15), 0);
    assert_int_equal(pgs_offsets_done(o, 10), 0);
    assert_int_equal(pgs_offsets_done(o, 15), 0);
    assert_int_equal(pgs_offsets_position(o), 11);
    assert_int_equal(pgs_offsets_pending(o), 2);
    assert_int_equal(pgs_offsets_incomplete(o), 1);
    assert_int_equal(pgs_offsets_done(o, 12), 0);
    assert_int_equal(pgs_offsets_position(o), 16);
    assert_int_equal(pgs_offsets_committable(o), 16);
    /* The gap offsets were never tracked. */
    assert_int_equal(pgs_offsets_done(o, 11), -1);
    assert_int_equal(pgs_offsets_done(o, 13), -1);
    /* After the window drains, the position holds until the next done. */
    assert_int_equal(pgs_offsets_track(o, 20), 0);
    assert_int_equal(pgs_offsets_position(o), 16);
    assert_int_equal(pgs_offsets_committable(o), -1);
    assert_int_equal(pgs_offsets_done(o, 20), 0);
    assert_int_equal(pgs_offsets_committable(o), 21);
    pgs_offsets_free(o);
}

static void test_rejects(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();

    assert_int_equal(pgs_offsets_done(o, 0), -1);
    assert_int_equal(pgs_offsets_track(o, -1), -1);
    assert_int_equal(pgs_offsets_track(o, 0), 0);
    assert_int_equal(pgs_offsets_track(o, 0), -1);
    assert_int_equal(pgs_offsets_track(o, 5), 0);
    assert_int_equal(pgs_offsets_track(o, 3), -1);
    assert_int_equal(pgs_offsets_pending(o), 2);
    assert_int_equal(pgs_offsets_done(o, 3), -1);
    assert_int_equal(pgs_offsets_done(o, 6), -1);
    assert_int_equal(pgs_offsets_done(o, 5), 0);
    /* Twice done counts once. */
    assert_int_equal(pgs_offsets_done(o, 5), 0);
    assert_int_equal(pgs_offsets_incomplete(o), 1);
    assert_int_equal(pgs_offsets_done(o, 0), 0);
    /* Popped offsets are no longer tracked. */
    assert_int_equal(pgs_offsets_done(o, 0), -1);
    assert_int_equal(pgs_offsets_track(o, 5), -1);
    assert_int_equal(pgs_offsets_position(o), 6);
    pgs_offsets_free(o);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void shuffle(size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

enum { N = 10000 };

/* Reference: offsets[i] with done flags; the watermark is the first
 * not-done index. */
typedef struct {
    int64_t offsets[N];
    int done[N];
    size_t tracked;
    size_t first_open;
    size_t ndone;
} ref_t;

static int64_t ref_position(ref_t *r)
{
    while (r->first_open < r->tracked && r->done[r->first_open])
        r->first_open++;
    return r->first_open == 0 ? -1 : r->offsets[r->first_open - 1] + 1;
}

static void check(pgs_offsets_t *o, ref_t *r)
{
    int64_t pos = ref_position(r);
    assert_int_equal(pgs_offsets_position(o), pos);
    assert_int_equal(pgs_offsets_pending(o), r->tracked - r->first_open);
    assert_int_equal(pgs_offsets_incomplete(o), r->tracked - r->ndone);
}

static void ref_track(pgs_offsets_t *o, ref_t *r)
{
    /* Gaps of 0..3 between offsets, as after compaction. */
    int64_t off = r->tracked == 0 ? 1000 : r->offsets[r->tracked - 1] + 1 + (int64_t)(rng() % 4);
    assert_int_equal(pgs_offsets_track(o, off), 0);
    r->offsets[r->tracked++] = off;
}

static void test_shuffled_growth(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();
    ref_t *r = calloc(1, sizeof(*r));
    size_t *order = malloc(N * sizeof(*order));

    for (size_t i = 0; i < N; i++) {
        ref_track(o, r);
        order[i] = i;
    }
    shuffle(order, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(pgs_offsets_done(o, r->offsets[order[i]]), 0);
        r->done[order[i]] = 1;
        r->ndone++;
        check(o, r);
    }
    assert_int_equal(pgs_offsets_position(o), r->offsets[N - 1] + 1);
    assert_int_equal(pgs_offsets_pending(o), 0);
    free(order);
    free(r);
    pgs_offsets_free(o);
}

/* Tracking and completing interleaved: the window slides around the ring and
 * grows while wrapped. */
static void test_interleaved_wraparound(void **state)
{
    (void)state;
    pgs_offsets_t *o = pgs_offsets_new();
    ref_t *r = calloc(1, sizeof(*r));
    size_t *open = malloc(N * sizeof(*open));
    size_t nopen = 0;
    int64_t last_commit = -1;

    while (r->ndone < N) {
        /* Bias towards tracking early so the window gets larger than the
         * initial ring, then drain. */
        size_t want_track = r->tracked < N / 2 ? 1 + rng() % 40 : 1 + rng() % 10;
        for (size_t k = 0; k < want_track && r->tracked < N; k++) {
            open[nopen++] = r->tracked;
            ref_track(o, r);
        }
        size_t want_done = 1 + rng() % 30;
        for (size_t k = 0; k < want_done && nopen > 0; k++) {
            size_t j = rng() % nopen;
            size_t i = open[j];
            open[j] = open[--nopen];
            assert_int_equal(pgs_offsets_done(o, r->offsets[i]), 0);
            r->done[i] = 1;
            r->ndone++;
            check(o, r);
        }
        int64_t pos = ref_position(r);
        int64_t c = pgs_offsets_committable(o);
        assert_int_equal(c, pos != last_commit ? pos : -1);
        last_commit = pos;
    }
    assert_int_equal(pgs_offsets_position(o), r->offsets[N - 1] + 1);
    free(open);
    free(r);
    pgs_offsets_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_reverse_completion),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_shuffled_growth),
        cmocka_unit_test(test_interleaved_wraparound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
