/* Unit tests for key lanes: per-key order, one in flight, clinic round-robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "run/lanes.h"

typedef struct {
    pgs_lane_item_t li;
    int key;
    int seq;
    int partition;
} witem_t;

#define WITEM(p) ((witem_t *)((char *)(p)-offsetof(witem_t, li)))

static void push(pgs_lanes_t *l, witem_t *w, int group, int key)
{
    char g[32], k[64];
    snprintf(g, sizeof(g), "clinic-%d", group);
    int n = snprintf(k, sizeof(k), "clinic-%d/patient/%d", group, key);
    w->key = key;
    pgs_lanes_push(l, &w->li, g, k, (size_t)n);
}

static void assert_counts(pgs_lanes_t *l, size_t queued, size_t ready, size_t in_flight)
{
    assert_int_equal(pgs_lanes_queued(l), queued);
    assert_int_equal(pgs_lanes_ready(l), ready);
    assert_int_equal(pgs_lanes_in_flight(l), in_flight);
}

static void test_same_key_one_in_flight(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[3] = {0};
    pgs_lane_item_t *out[8];

    for (int i = 0; i < 3; i++)
        push(l, &w[i], 1, 7);
    assert_counts(l, 3, 1, 0);
    assert_int_equal(pgs_lanes_take(l, out, 8), 1);
    assert_ptr_equal(out[0], &w[0].li);
    assert_int_equal(pgs_lanes_take(l, out, 8), 0);
    assert_counts(l, 3, 0, 1);
    pgs_lanes_complete(l, &w[0].li);
    assert_counts(l, 2, 1, 0);
    assert_int_equal(pgs_lanes_take(l, out, 8), 1);
    assert_ptr_equal(out[0], &w[1].li);
    assert_int_equal(pgs_lanes_take(l, out, 8), 0);
    pgs_lanes_free(l);
}

static void test_lane_order_across_complete(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[50] = {0};
    pgs_lane_item_t *out[4];

    for (int i = 0; i < 50; i++) {
        w[i].seq = i;
        push(l, &w[i], 2, 1);
    }
    for (int i = 0; i < 50; i++) {
        assert_int_equal(pgs_lanes_take(l, out, 4), 1);
        assert_int_equal(WITEM(out[0])->seq, i);
        /* Nothing behind the in-flight head is ready. */
        assert_int_equal(pgs_lanes_ready(l), 0);
        pgs_lanes_complete(l, out[0]);
    }
    assert_counts(l, 0, 0, 0);
    pgs_lanes_free(l);
}

static void test_different_keys_all_ready(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[10] = {0};
    pgs_lane_item_t *out[16];

    for (int i = 0; i < 10; i++)
        push(l, &w[i], 3, i);
    assert_counts(l, 10, 10, 0);
    assert_int_equal(pgs_lanes_take(l, out, 16), 10);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(out[i], &w[i].li); /* FIFO by readiness */
    assert_counts(l, 10, 0, 10);
    for (int i = 0; i < 10; i++)
        pgs_lanes_complete(l, out[i]);
    assert_counts(l, 0, 0, 0);
    pgs_lanes_free(l);
}

static void test_round_robin_groups(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[3][4];
    pgs_lane_item_t *out[8];
    int first = -1;

    memset(w, 0, sizeof(w));
    for (int i = 0; i < 4; i++)
        for (int g = 0; g < 3; g++)
            push(l, &w[g][i], g, i);
    for (int round = 0; round < 2; round++) {
        for (int call = 0; call < 3; call++) {
            size_t n = pgs_lanes_take(l, out, 2);
            assert_int_equal(n, 2);
            int g = (int)(WITEM(out[0]) - &w[0][0]) / 4;
            assert_int_equal((int)(WITEM(out[1]) - &w[0][0]) / 4, g);
            if (first < 0)
                first = g;
            /* Groups alternate in a fixed cycle. */
            assert_int_equal(g, (first + call) % 3);
            assert_ptr_equal(out[0], &w[g][round * 2].li);
            assert_ptr_equal(out[1], &w[g][round * 2 + 1].li);
        }
    }
    assert_int_equal(pgs_lanes_take(l, out, 8), 0);
    assert_counts(l, 12, 0, 12);
    pgs_lanes_free(l);
}

static void test_round_robin_skips_idle_group(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t a[3] = {0}, b = {0}, c[3] = {0};
    pgs_lane_item_t *out[1];

    for (int i = 0; i < 3; i++) {
        push(l, &a[i], 0, i);
        push(l, &c[i], 2, i);
    }
    push(l, &b, 1, 0);
    /* Order of first readiness: 0, 2, 1. */
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &a[0].li);
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &c[0].li);
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &b.li);
    /* Group 1 is now idle and is not visited. */
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &a[1].li);
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &c[1].li);
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &a[2].li);
    pgs_lanes_free(l);
}

static void test_max_respected(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[10] = {0};
    pgs_lane_item_t *out[10];

    for (int i = 0; i < 10; i++)
        push(l, &w[i], 0, i);
    assert_int_equal(pgs_lanes_take(l, out, 0), 0);
    assert_int_equal(pgs_lanes_take(l, out, 3), 3);
    assert_ptr_equal(out[2], &w[2].li);
    assert_counts(l, 10, 7, 3);
    assert_int_equal(pgs_lanes_take(l, out, 3), 3);
    assert_ptr_equal(out[0], &w[3].li);
    assert_int_equal(pgs_lanes_take(l, out, 10), 4);
    assert_counts(l, 10, 0, 10);
    pgs_lanes_free(l);
}

static void test_retry_goes_to_front(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t a1 = {0}, a2 = {0}, b1 = {0};
    pgs_lane_item_t *out[8];

    push(l, &a1, 0, 1);
    push(l, &a2, 0, 1);
    push(l, &b1, 0, 2);
    assert_int_equal(pgs_lanes_take(l, out, 1), 1);
    assert_ptr_equal(out[0], &a1.li);
    pgs_lanes_retry(l, &a1.li);
    assert_counts(l, 3, 2, 0); /* a1 and b1; a2 stays behind a1 */
    assert_int_equal(pgs_lanes_take(l, out, 8), 2);
    assert_ptr_equal(out[0], &a1.li);
    assert_ptr_equal(out[1], &b1.li);
    pgs_lanes_complete(l, &a1.li);
    assert_int_equal(pgs_lanes_take(l, out, 8), 1);
    assert_ptr_equal(out[0], &a2.li);
    pgs_lanes_free(l);
}

static int pred_partition(pgs_lane_item_t *item, void *opaque)
{
    return WITEM(item)->partition == *(int *)opaque;
}

static int dropped_count;

static void drop_count(pgs_lane_item_t *item, void *opaque)
{
    (void)opaque;
    assert_null(item->lane_next);
    WITEM(item)->seq = -1;
    dropped_count++;
}

static void test_purge_preserves_order(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t a[6] = {0}, b[3] = {0};
    pgs_lane_item_t *out[8];
    int part = 1;

    /* Lane A: partitions 0 1 0 1 1 0, head taken in flight (partition 0).
     * Lane B: 1 1 0, all waiting. */
    int pa[6] = {0, 1, 0, 1, 1, 0};
    for (int i = 0; i < 6; i++) {
        a[i].seq = i;
        a[i].partition = pa[i];
        push(l, &a[i], 0, 1);
    }
    assert_int_equal(pgs_lanes_take(l, out, 8), 1);
    assert_ptr_equal(out[0], &a[0].li);
    for (int i = 0; i < 3; i++) {
        b[i].seq = 10 + i;
        b[i].partition = i < 2 ? 1 : 0;
        push(l, &b[i], 0, 2);
    }
    assert_counts(l, 9, 1, 1);

    dropped_count = 0;
    assert_int_equal(pgs_lanes_purge(l, pred_partition, drop_count, &part), 5);
    assert_int_equal(dropped_count, 5);
    assert_counts(l, 4, 1, 1);

    /* B's new head b[2] is ready; A's in-flight head stays. */
    assert_int_equal(pgs_lanes_take(l, out, 8), 1);
    assert_ptr_equal(out[0], &b[2].li);
    pgs_lanes_complete(l, &b[2].li);
    pgs_lanes_complete(l, &a[0].li);
    int expect[] = {2, 5};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pgs_lanes_take(l, out, 8), 1);
        assert_int_equal(WITEM(out[0])->seq, expect[i]);
        pgs_lanes_complete(l, out[0]);
    }
    assert_counts(l, 0, 0, 0);

    /* Purging everything empties the lanes and forgets the ready items. */
    for (int i = 0; i < 3; i++) {
        b[i].partition = 1;
        push(l, &b[i], 0, i);
    }
    assert_int_equal(pgs_lanes_purge(l, pred_partition, drop_count, &part), 3);
    assert_counts(l, 0, 0, 0);
    assert_int_equal(pgs_lanes_take(l, out, 8), 0);
    pgs_lanes_free(l);
}

static void test_many_keys(void **state)
{
    (void)state;
    enum { N = 50000 };
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t *w = calloc(N * 2, sizeof(*w));
    pgs_lane_item_t **out = calloc(N, sizeof(*out));

    for (int i = 0; i < N * 2; i++)
        push(l, &w[i], 0, i % N);
    assert_counts(l, 2 * N, N, 0);
    assert_int_equal(pgs_lanes_take(l, out, N), N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(out[i], &w[i].li);
        pgs_lanes_complete(l, out[i]);
    }
    assert_int_equal(pgs_lanes_take(l, out, N), N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(out[i], &w[N + i].li);
        pgs_lanes_complete(l, out[i]);
    }
    assert_counts(l, 0, 0, 0);
    free(out);
    free(w);
    pgs_lanes_free(l);
}

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

static int purge_all_of_group_7(pgs_lane_item_t *item, void *opaque)
{
    (void)opaque;
    return WITEM(item)->seq == 7;
}

static void test_lane_recycling(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w = {0};
    pgs_lane_item_t *out[1];

    for (int i = 0; i < 10; i++) {
        push(l, &w, 0, i);
        assert_int_equal(pgs_lanes_take(l, out, 1), 1);
        pgs_lanes_complete(l, out[0]);
    }
    size_t before = heap_in_use();
    for (int i = 0; i < 10000; i++) {
        push(l, &w, 0, i % 10);
        assert_int_equal(pgs_lanes_take(l, out, 1), 1);
        pgs_lanes_complete(l, out[0]);
    }
    assert_int_equal(heap_in_use(), before);
    assert_counts(l, 0, 0, 0);
    pgs_lanes_free(l);
}

/* Clinics come and go: 10 000 clinics each seen once leave no group behind,
 * and the heap does not grow with them (a few groups are kept for reuse).
 * Purging a clinic's queued items releases its group too, after the ready
 * FIFOs are swept. */
static void test_groups_of_gone_clinics_freed(void **state)
{
    (void)state;
    pgs_lanes_t *l = pgs_lanes_new();
    witem_t w[3];
    memset(w, 0, sizeof(w));
    pgs_lane_item_t *out[2];
    for (int c = 0; c < 100; c++) {
        push(l, &w[0], c, 1);
        assert_int_equal(pgs_lanes_take(l, out, 1), 1);
        pgs_lanes_complete(l, out[0]);
    }
    size_t before = heap_in_use();
    for (int c = 100; c < 10100; c++) {
        push(l, &w[0], c, 1);
        push(l, &w[1], c, 2);
        assert_int_equal(pgs_lanes_groups(l), 1);
        assert_int_equal(pgs_lanes_take(l, out, 2), 2);
        pgs_lanes_retry(l, out[1]); /* one goes back; the group stays */
        pgs_lanes_complete(l, out[0]);
        assert_int_equal(pgs_lanes_groups(l), 1);
        assert_int_equal(pgs_lanes_take(l, out, 1), 1);
        pgs_lanes_complete(l, out[0]);
        assert_int_equal(pgs_lanes_groups(l), 0);
    }
    assert_int_equal(heap_in_use(), before);
    assert_counts(l, 0, 0, 0);

    /* a purge empties clinic 7's group while clinic 8 keeps its own */
    w[0].seq = w[1].seq = 7;
    w[2].seq = 8;
    push(l, &w[0], 7, 1);
    push(l, &w[1], 7, 2);
    push(l, &w[2], 8, 1);
    assert_int_equal(pgs_lanes_groups(l), 2);
    assert_int_equal(pgs_lanes_purge(l, purge_all_of_group_7, NULL, NULL), 2);
    assert_int_equal(pgs_lanes_groups(l), 1);
    assert_int_equal(pgs_lanes_take(l, out, 2), 1);
    assert_ptr_equal(out[0], &w[2].li);
    pgs_lanes_complete(l, out[0]);
    assert_int_equal(pgs_lanes_groups(l), 0);
    assert_counts(l, 0, 0, 0);
    pgs_lanes_free(l);
}

/* Reference model: per-key FIFOs of item indexes plus a readiness sequence
 * per ready item (retry gets a sequence below all others). */
enum { M_KEYS = 500, M_GROUPS = 20, M_OPS = 100000 };
enum { ST_FREE, ST_WAIT, ST_READY, ST_FLIGHT, ST_GONE };

typedef struct {
    witem_t w;
    int state;
    int next; /* next in key FIFO */
    long ready_seq;
} mitem_t;

typedef struct {
    mitem_t *items;
    int nitems;
    int head[M_KEYS], tail[M_KEYS];
    int *flight;
    int nflight;
    size_t queued, ready;
    long seq_back, seq_front;
} model_t;

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int idx_of(model_t *m, pgs_lane_item_t *li)
{
    return (int)((mitem_t *)(void *)WITEM(li) - m->items);
}

static void model_make_ready(model_t *m, int i, long seq)
{
    m->items[i].state = ST_READY;
    m->items[i].ready_seq = seq;
    m->ready++;
}

static void model_check_counts(model_t *m, pgs_lanes_t *l)
{
    assert_int_equal(pgs_lanes_queued(l), m->queued);
    assert_int_equal(pgs_lanes_ready(l), m->ready);
    assert_int_equal(pgs_lanes_in_flight(l), (size_t)m->nflight);
}

static void model_check_lanes(model_t *m)
{
    for (int k = 0; k < M_KEYS; k++) {
        for (int i = m->head[k]; i >= 0; i = m->items[i].next) {
            int st = m->items[i].state;
            if (i == m->head[k])
                assert_true(st == ST_READY || st == ST_FLIGHT);
            else
                assert_int_equal(st, ST_WAIT);
            /* The library's lane links must agree with the model's. */
            pgs_lane_item_t *nx = m->items[i].w.li.lane_next;
            int mn = m->items[i].next;
            assert_ptr_equal(nx, mn >= 0 ? &m->items[mn].w.li : NULL);
        }
    }
}

static void model_take(model_t *m, pgs_lanes_t *l)
{
    pgs_lane_item_t *out[16];
    size_t max = 1 + rng() % 16;
    size_t n = pgs_lanes_take(l, out, max);

    if (m->ready == 0) {
        assert_int_equal(n, 0);
        return;
    }
    assert_true(n > 0);
    int g = m->items[idx_of(m, out[0])].w.key % M_GROUPS;
    long max_taken = 0;
    for (size_t j = 0; j < n; j++) {
        int i = idx_of(m, out[j]);
        mitem_t *it = &m->items[i];
        assert_int_equal(it->w.key % M_GROUPS, g);
        assert_int_equal(it->state, ST_READY);
        assert_int_equal(m->head[it->w.key], i);
        if (j > 0)
            assert_true(it->ready_seq >= max_taken);
        max_taken = it->ready_seq;
        it->state = ST_FLIGHT;
        m->ready--;
        m->flight[m->nflight++] = i;
    }
    /* Whatever stayed ready in that group came later, and only a full
     * batch may leave some behind. */
    size_t left = 0;
    for (int k = g; k < M_KEYS; k += M_GROUPS) {
        int h = m->head[k];
        if (h >= 0 && m->items[h].state == ST_READY) {
            assert_true(m->items[h].ready_seq >= max_taken);
            left++;
        }
    }
    if (left > 0)
        assert_int_equal(n, max);
}

static int pred_mod(pgs_lane_item_t *item, void *opaque)
{
    return WITEM(item)->seq % 7 == *(int *)opaque;
}

static void drop_mark(pgs_lane_item_t *item, void *opaque)
{
    (void)opaque;
    WITEM(item)->partition = -1; /* marks "dropped by the library" */
}

static void model_purge(model_t *m, pgs_lanes_t *l)
{
    int r = (int)(rng() % 7);
    size_t expect = 0;

    for (int k = 0; k < M_KEYS; k++) {
        int *p = &m->head[k];
        int prev = -1;
        int old_head = m->head[k];
        while (*p >= 0) {
            mitem_t *it = &m->items[*p];
            if (it->state != ST_FLIGHT && it->w.seq % 7 == r) {
                if (it->state == ST_READY)
                    m->ready--;
                it->state = ST_GONE;
                *p = it->next;
                expect++;
                continue;
            }
            prev = *p;
            p = &it->next;
        }
        m->tail[k] = prev;
        /* New heads become ready together, after everything already ready. */
        if (m->head[k] >= 0 && m->head[k] != old_head)
            model_make_ready(m, m->head[k], m->seq_back);
    }
    m->seq_back++;
    m->queued -= expect;
    assert_int_equal(pgs_lanes_purge(l, pred_mod, drop_mark, &r), expect);
    for (int i = 0; i < m->nitems; i++)
        assert_int_equal(m->items[i].w.partition == -1, m->items[i].state == ST_GONE);
}

static void test_model_random(void **state)
{
    (void)state;
    model_t m = {0};
    pgs_lanes_t *l = pgs_lanes_new();

    m.items = calloc(M_OPS, sizeof(*m.items));
    m.flight = calloc(M_OPS, sizeof(*m.flight));
    for (int k = 0; k < M_KEYS; k++)
        m.head[k] = m.tail[k] = -1;

    for (int op = 0; op < M_OPS; op++) {
        unsigned r = (unsigned)(rng() % 1000);
        if (r < 450) {
            int i = m.nitems++;
            int k = (int)(rng() % M_KEYS);
            mitem_t *it = &m.items[i];
            it->w.seq = i;
            it->next = -1;
            push(l, &it->w, k % M_GROUPS, k);
            m.queued++;
            if (m.head[k] < 0) {
                m.head[k] = i;
                model_make_ready(&m, i, m.seq_back++);
            } else {
                m.items[m.tail[k]].next = i;
                it->state = ST_WAIT;
            }
            m.tail[k] = i;
        } else if (r < 650) {
            model_take(&m, l);
        } else if (r < 999) {
            if (m.nflight == 0)
                continue;
            int f = (int)(rng() % (unsigned)m.nflight);
            int i = m.flight[f];
            mitem_t *it = &m.items[i];
            m.flight[f] = m.flight[--m.nflight];
            if (r < 900) {
                int k = it->w.key;
                pgs_lanes_complete(l, &it->w.li);
                it->state = ST_GONE;
                it->w.partition = -1;
                m.queued--;
                m.head[k] = it->next;
                if (m.head[k] < 0)
                    m.tail[k] = -1;
                else
                    model_make_ready(&m, m.head[k], m.seq_back++);
            } else {
                pgs_lanes_retry(l, &it->w.li);
                model_make_ready(&m, i, --m.seq_front);
            }
        } else {
            model_purge(&m, l);
        }
        model_check_counts(&m, l);
        if (op % 5000 == 0)
            model_check_lanes(&m);
    }
    model_check_lanes(&m);
    /* Drain: everything left comes out in lane order. */
    while (m.queued > 0) {
        model_take(&m, l);
        while (m.nflight > 0) {
            int i = m.flight[--m.nflight];
            int k = m.items[i].w.key;
            pgs_lanes_complete(l, &m.items[i].w.li);
            m.items[i].state = ST_GONE;
            m.queued--;
            m.head[k] = m.items[i].next;
            if (m.head[k] >= 0)
                model_make_ready(&m, m.head[k], m.seq_back++);
        }
        model_check_counts(&m, l);
    }
    assert_counts(l, 0, 0, 0);
    free(m.items);
    free(m.flight);
    pgs_lanes_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_one_in_flight),
        cmocka_unit_test(test_lane_order_across_complete),
        cmocka_unit_test(test_different_keys_all_ready),
        cmocka_unit_test(test_round_robin_groups),
        cmocka_unit_test(test_round_robin_skips_idle_group),
        cmocka_unit_test(test_max_respected),
        cmocka_unit_test(test_retry_goes_to_front),
        cmocka_unit_test(test_purge_preserves_order),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_lane_recycling),
        cmocka_unit_test(test_groups_of_gone_clinics_freed),
        cmocka_unit_test(test_model_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
