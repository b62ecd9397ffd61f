/* Key lanes: per-key FIFO with one item in flight, clinics served by deficit
 * round robin within their rate limits. */
#include "run/lanes.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/xalloc.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Emptied lanes kept for reuse: a busy key pushes and completes thousands of
 * times a second, and each time its lane empties. */
#define PGS_LANES_FREE_MAX 1024
/* Groups of clinics no longer seen are released once they hold no lane; a
 * few are kept for reuse, as a clinic whose one key is busy empties its
 * group with every command. */
#define PGS_GROUPS_FREE_MAX 64
#define PGS_HTAB_INITIAL    64

/* Chained hash node shared by lanes and groups; always the first member so a
 * node pointer converts to its container. */
typedef struct pgs_hnode_s {
    struct pgs_hnode_s *next;
    uint64_t hash;
    char *key;
    size_t key_len;
    size_t key_cap;
} pgs_hnode_t;

typedef struct {
    pgs_hnode_t **buckets;
    size_t mask;
    size_t count;
} pgs_htab_t;

typedef struct pgs_group_s {
    pgs_hnode_t node;
    pgs_lane_item_t *ready_head; /* ready FIFO, linked by ready_next */
    pgs_lane_item_t *ready_tail;
    struct pgs_group_s *ring_prev; /* ring of groups with ready items */
    struct pgs_group_s *ring_next;
    int in_ring;
    size_t nlanes;  /* lanes of the group; at 0 (and out of the ring) it goes */
    size_t nready;  /* items in the ready FIFO */
    size_t nqueued; /* items of the group's lanes, in flight or not */
    size_t deficit; /* commands it may still take this round (deficit round robin) */
    struct pgs_group_s *free_next;
} pgs_group_t;

struct pgs_lane_s {
    pgs_hnode_t node;
    pgs_group_t *group;
    pgs_lane_item_t *head; /* linked by lane_next; head is ready or in flight */
    pgs_lane_item_t *tail;
    pgs_lane_t *free_next;
};

struct pgs_lanes_s {
    pgs_htab_t lanes;
    pgs_htab_t groups;
    pgs_group_t *cursor; /* next group to serve; NULL when nothing is ready */
    size_t ring_count;   /* groups in the ring */
    pgs_ratelimit_t *limits;
    size_t quantum; /* commands a group may take per round; 0: a whole take */
    pgs_lane_t *free_lanes;
    size_t free_count;
    pgs_group_t *free_groups;
    size_t free_groups_count;
    size_t queued;
    size_t ready;
    size_t in_flight;
};

static uint64_t hash_bytes(const char *key, size_t len)
{
    uint64_t h = pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, key, len);
    /* FNV's low bits are weak for short keys; the bucket index uses them. */
    h ^= h >> 32;
    return h;
}

static void htab_init(pgs_htab_t *t)
{
    t->buckets = calloc(PGS_HTAB_INITIAL, sizeof(*t->buckets));
    t->mask = PGS_HTAB_INITIAL - 1;
    t->count = 0;
}

static pgs_hnode_t *htab_find(const pgs_htab_t *t, uint64_t hash, const char *key, size_t len)
{
    for (pgs_hnode_t *n = t->buckets[hash & t->mask]; n; n = n->next) {
        if (n->hash == hash && n->key_len == len && memcmp(n->key, key, len) == 0)
            return n;
    }
    return NULL;
}

static void htab_grow(pgs_htab_t *t)
{
    size_t size = (t->mask + 1) * 2;
    pgs_hnode_t **buckets = calloc(size, sizeof(*buckets));
    /* A failed grow only lengthens chains; keep the old table. */
    if (!buckets)
        return;
    for (size_t i = 0; i <= t->mask; i++) {
        pgs_hnode_t *n = t->buckets[i];
        while (n) {
            pgs_hnode_t *next = n->next;
            n->next = buckets[n->hash & (size - 1)];
            buckets[n->hash & (size - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->mask = size - 1;
}

static void htab_insert(pgs_htab_t *t, pgs_hnode_t *n)
{
    if (t->count >= t->mask + 1)
        htab_grow(t);
    pgs_hnode_t **b = &t->buckets[n->hash & t->mask];
    n->next = *b;
    *b = n;
    t->count++;
}

static void htab_remove(pgs_htab_t *t, pgs_hnode_t *n)
{
    pgs_hnode_t **p = &t->buckets[n->hash & t->mask];
    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    n->next = NULL;
    t->count--;
}

/* Copies the key into the node, reusing its buffer when large enough. */
static void node_set_key(pgs_hnode_t *n, uint64_t hash, const char *key, size_t len)
{
    if (n->key_cap < len || !n->key) {
        free(n->key);
        n->key_cap = len < 32 ? 32 : len;
        n->key = pgs_xalloc_malloc(n->key_cap);
    }
    if (len)
        memcpy(n->key, key, len);
    n->key_len = len;
    n->hash = hash;
}

static void ring_insert(pgs_lanes_t *lanes, pgs_group_t *g)
{
    if (g->in_ring)
        return;
    g->in_ring = 1;
    lanes->ring_count++;
    pgs_group_t *c = lanes->cursor;
    if (!c) {
        g->ring_prev = g->ring_next = g;
        lanes->cursor = g;
        return;
    }
    /* Just behind the cursor: a newly ready clinic waits for a full round. */
    g->ring_next = c;
    g->ring_prev = c->ring_prev;
    c->ring_prev->ring_next = g;
    c->ring_prev = g;
}

static void ring_remove(pgs_lanes_t *lanes, pgs_group_t *g)
{
    if (!g->in_ring)
        return;
    g->in_ring = 0;
    g->deficit = 0;
    lanes->ring_count--;
    if (lanes->limits) /* nothing ready: a throttled spell ends */
        pgs_ratelimit_idle(lanes->limits, g->node.key, g->node.key_len, pgs_clock_now_us());
    if (g->ring_next == g) {
        lanes->cursor = NULL;
    } else {
        g->ring_prev->ring_next = g->ring_next;
        g->ring_next->ring_prev = g->ring_prev;
        if (lanes->cursor == g)
            lanes->cursor = g->ring_next;
    }
    g->ring_prev = g->ring_next = NULL;
}

static void ready_append(pgs_lanes_t *lanes, pgs_lane_item_t *item)
{
    pgs_group_t *g = item->lane->group;
    item->ready_next = NULL;
    if (g->ready_tail)
        g->ready_tail->ready_next = item;
    else
        g->ready_head = item;
    g->ready_tail = item;
    g->nready++;
    lanes->ready++;
    ring_insert(lanes, g);
}

static void ready_prepend(pgs_lanes_t *lanes, pgs_lane_item_t *item)
{
    pgs_group_t *g = item->lane->group;
    item->ready_next = g->ready_head;
    g->ready_head = item;
    if (!g->ready_tail)
        g->ready_tail = item;
    g->nready++;
    lanes->ready++;
    ring_insert(lanes, g);
}

static pgs_group_t *group_get(pgs_lanes_t *lanes, const char *name)
{
    if (!name)
        name = "";
    size_t len = strlen(name);
    uint64_t hash = hash_bytes(name, len);
    pgs_hnode_t *n = htab_find(&lanes->groups, hash, name, len);
    if (n)
        return (pgs_group_t *)n;
    pgs_group_t *g = lanes->free_groups;
    if (g) {
        lanes->free_groups = g->free_next;
        lanes->free_groups_count--;
        pgs_hnode_t keep = g->node; /* its key buffer is reused */
        memset(g, 0, sizeof(*g));
        g->node.key = keep.key;
        g->node.key_cap = keep.key_cap;
    } else {
        g = pgs_xalloc_malloc(sizeof(*g));
        memset(g, 0, sizeof(*g));
    }
    node_set_key(&g->node, hash, name, len);
    htab_insert(&lanes->groups, &g->node);
    return g;
}

/* A group without lanes and out of the ring (so without ready items) leaves
 * the table; while a purge sweeps the ring, a group still in it waits for
 * sweep_ready. */
static void group_release_if_empty(pgs_lanes_t *lanes, pgs_group_t *g)
{
    if (g->nlanes > 0 || g->in_ring)
        return;
    htab_remove(&lanes->groups, &g->node);
    if (lanes->free_groups_count >= PGS_GROUPS_FREE_MAX) {
        free(g->node.key);
        free(g);
        return;
    }
    g->free_next = lanes->free_groups;
    lanes->free_groups = g;
    lanes->free_groups_count++;
}

static pgs_lane_t *lane_alloc(pgs_lanes_t *lanes)
{
    pgs_lane_t *lane = lanes->free_lanes;
    if (lane) {
        lanes->free_lanes = lane->free_next;
        lanes->free_count--;
        return lane;
    }
    lane = pgs_xalloc_malloc(sizeof(*lane));
    memset(lane, 0, sizeof(*lane));
    return lane;
}

static void lane_release(pgs_lanes_t *lanes, pgs_lane_t *lane)
{
    htab_remove(&lanes->lanes, &lane->node);
    pgs_group_t *g = lane->group;
    lane->head = lane->tail = NULL;
    lane->group = NULL;
    g->nlanes--;
    group_release_if_empty(lanes, g);
    if (lanes->free_count >= PGS_LANES_FREE_MAX) {
        free(lane->node.key);
        free(lane);
        return;
    }
    lane->free_next = lanes->free_lanes;
    lanes->free_lanes = lane;
    lanes->free_count++;
}

pgs_lanes_t *pgs_lanes_new(void)
{
    pgs_lanes_t *lanes = calloc(1, sizeof(*lanes));
    if (!lanes)
        return NULL;
    htab_init(&lanes->lanes);
    htab_init(&lanes->groups);
    if (!lanes->lanes.buckets || !lanes->groups.buckets) {
        free(lanes->lanes.buckets);
        free(lanes->groups.buckets);
        free(lanes);
        return NULL;
    }
    return lanes;
}

static void htab_free_nodes(pgs_htab_t *t)
{
    for (size_t i = 0; i <= t->mask; i++) {
        pgs_hnode_t *n = t->buckets[i];
        while (n) {
            pgs_hnode_t *next = n->next;
            free(n->key);
            free(n);
            n = next;
        }
    }
    free(t->buckets);
}

void pgs_lanes_free(pgs_lanes_t *lanes)
{
    if (!lanes)
        return;
    htab_free_nodes(&lanes->lanes);
    htab_free_nodes(&lanes->groups);
    while (lanes->free_groups) {
        pgs_group_t *next = lanes->free_groups->free_next;
        free(lanes->free_groups->node.key);
        free(lanes->free_groups);
        lanes->free_groups = next;
    }
    while (lanes->free_lanes) {
        pgs_lane_t *next = lanes->free_lanes->free_next;
        free(lanes->free_lanes->node.key);
        free(lanes->free_lanes);
        lanes->free_lanes = next;
    }
    free(lanes);
}

/* The lane of @p key in @p g. A lane belongs to one group: a lane of the
 * same key bytes in another group is another lane, so a caller whose key
 * failed to name the clinic still cannot put two clinics in one lane. */
static pgs_lane_t *lane_find(const pgs_lanes_t *lanes, const pgs_group_t *g, uint64_t hash,
                             const char *key, size_t len)
{
    for (pgs_hnode_t *n = lanes->lanes.buckets[hash & lanes->lanes.mask]; n; n = n->next) {
        if (n->hash == hash && n->key_len == len && memcmp(n->key, key, len) == 0 &&
            ((pgs_lane_t *)n)->group == g)
            return (pgs_lane_t *)n;
    }
    return NULL;
}

void pgs_lanes_push(pgs_lanes_t *lanes, pgs_lane_item_t *item, const char *group, const char *key,
                    size_t key_len)
{
    if (!key)
        key = "";
    pgs_group_t *g = group_get(lanes, group);
    uint64_t hash = hash_bytes(key, key_len);
    pgs_lane_t *lane = lane_find(lanes, g, hash, key, key_len);

    item->lane_next = NULL;
    item->ready_next = NULL;
    item->in_flight = 0;
    lanes->queued++;
    g->nqueued++;
    if (lane) {
        item->lane = lane;
        lane->tail->lane_next = item;
        lane->tail = item;
        return;
    }
    lane = lane_alloc(lanes);
    node_set_key(&lane->node, hash, key, key_len);
    lane->group = g;
    g->nlanes++;
    lane->head = lane->tail = item;
    htab_insert(&lanes->lanes, &lane->node);
    item->lane = lane;
    ready_append(lanes, item);
}

void pgs_lanes_set_limits(pgs_lanes_t *lanes, pgs_ratelimit_t *limits, size_t quantum)
{
    lanes->limits = limits;
    lanes->quantum = quantum;
}

/* How many of @p g's ready items one take may hand out: its deficit round
 * robin share (a lone group in the ring has no one to share with), at most
 * @p max and what is ready, then what its rate limit allows. */
static size_t group_share(pgs_lanes_t *lanes, pgs_group_t *g, size_t max, int64_t now_us)
{
    size_t want = max;
    if (lanes->quantum > 0 && lanes->ring_count > 1) {
        size_t cap = lanes->quantum > max ? lanes->quantum : max;
        g->deficit += lanes->quantum;
        if (g->deficit > cap)
            g->deficit = cap;
        want = g->deficit < max ? g->deficit : max;
    }
    if (want > g->nready)
        want = g->nready;
    if (lanes->limits)
        want = pgs_ratelimit_take(lanes->limits, g->node.key, g->node.key_len, want, now_us);
    return want;
}

size_t pgs_lanes_take_at(pgs_lanes_t *lanes, pgs_lane_item_t **out, size_t max, int64_t now_us)
{
    if (!lanes->cursor || max == 0)
        return 0;
    /* each group of the ring once at most: a throttled one is passed over,
     * its items staying ready in their lanes */
    for (size_t tries = lanes->ring_count; tries > 0; tries--) {
        pgs_group_t *g = lanes->cursor;
        size_t share = group_share(lanes, g, max, now_us);
        size_t n = 0;
        while (n < share && g->ready_head) {
            pgs_lane_item_t *item = g->ready_head;
            g->ready_head = item->ready_next;
            item->ready_next = NULL;
            item->in_flight = 1;
            out[n++] = item;
        }
        if (!g->ready_head)
            g->ready_tail = NULL;
        g->nready -= n;
        g->deficit -= n < g->deficit ? n : g->deficit;
        lanes->ready -= n;
        lanes->in_flight += n;
        lanes->cursor = g->ring_next;
        if (!g->ready_head)
            ring_remove(lanes, g);
        if (n > 0)
            return n;
    }
    return 0;
}

size_t pgs_lanes_take(pgs_lanes_t *lanes, pgs_lane_item_t **out, size_t max)
{
    return pgs_lanes_take_at(lanes, out, max, lanes->limits ? pgs_clock_now_us() : 0);
}

size_t pgs_lanes_group_queued(const pgs_lanes_t *lanes, const char *group)
{
    if (!group)
        group = "";
    size_t len = strlen(group);
    const pgs_hnode_t *n = htab_find(&lanes->groups, hash_bytes(group, len), group, len);
    return n ? ((const pgs_group_t *)n)->nqueued : 0;
}

void pgs_lanes_complete(pgs_lanes_t *lanes, pgs_lane_item_t *item)
{
    pgs_lane_t *lane = item->lane;

    assert(item->in_flight && lane && lane->head == item);
    lane->head = item->lane_next;
    item->lane_next = NULL;
    item->lane = NULL;
    item->in_flight = 0;
    lanes->in_flight--;
    lanes->queued--;
    lane->group->nqueued--;
    if (lane->head) {
        ready_append(lanes, lane->head);
        return;
    }
    lane->tail = NULL;
    lane_release(lanes, lane);
}

void pgs_lanes_retry(pgs_lanes_t *lanes, pgs_lane_item_t *item)
{
    assert(item->in_flight && item->lane && item->lane->head == item);
    item->in_flight = 0;
    lanes->in_flight--;
    ready_prepend(lanes, item);
}

/* Unlinks matching waiting items of one lane, chaining them on *dropped
 * through lane_next and marking them with lane == NULL so the ready FIFOs can
 * be swept afterwards. Returns 1 if the lane became empty. */
static int purge_lane(pgs_lanes_t *lanes, pgs_lane_t *lane, int (*pred)(pgs_lane_item_t *, void *),
                      void *opaque, pgs_lane_item_t **dropped, size_t *count)
{
    pgs_lane_item_t *old_head = lane->head;
    pgs_lane_item_t **p = &lane->head;
    pgs_lane_item_t *prev = NULL;

    while (*p) {
        pgs_lane_item_t *item = *p;
        if (item->in_flight || !pred(item, opaque)) {
            prev = item;
            p = &item->lane_next;
            continue;
        }
        *p = item->lane_next;
        if (item == old_head) {
            lanes->ready--; /* the ready sweep unlinks it */
            lane->group->nready--;
        }
        lane->group->nqueued--;
        item->lane = NULL;
        item->lane_next = *dropped;
        *dropped = item;
        (*count)++;
    }
    lane->tail = prev;
    if (!lane->head)
        return 1;
    if (lane->head != old_head)
        ready_append(lanes, lane->head);
    return 0;
}

static void sweep_ready(pgs_lanes_t *lanes)
{
    pgs_group_t *g = lanes->cursor;
    if (!g)
        return;
    /* Collect the ring first: removing groups while walking it would move
     * the stop condition. */
    pgs_group_t *last = g->ring_prev;
    for (;;) {
        pgs_group_t *next = g->ring_next;
        int at_end = g == last;
        pgs_lane_item_t **p = &g->ready_head;
        g->ready_tail = NULL;
        while (*p) {
            if (!(*p)->lane) {
                *p = (*p)->ready_next;
                continue;
            }
            g->ready_tail = *p;
            p = &(*p)->ready_next;
        }
        if (!g->ready_head) {
            ring_remove(lanes, g);
            group_release_if_empty(lanes, g);
        }
        if (at_end)
            break;
        g = next;
    }
}

size_t pgs_lanes_purge(pgs_lanes_t *lanes, int (*pred)(pgs_lane_item_t *item, void *opaque),
                       void (*drop)(pgs_lane_item_t *item, void *opaque), void *opaque)
{
    pgs_lane_item_t *dropped = NULL;
    size_t count = 0;
    pgs_htab_t *t = &lanes->lanes;

    for (size_t i = 0; i <= t->mask; i++) {
        pgs_hnode_t *n = t->buckets[i];
        while (n) {
            pgs_hnode_t *next = n->next;
            pgs_lane_t *lane = (pgs_lane_t *)n;
            if (purge_lane(lanes, lane, pred, opaque, &dropped, &count))
                lane_release(lanes, lane);
            n = next;
        }
    }
    lanes->queued -= count;
    sweep_ready(lanes);
    while (dropped) {
        pgs_lane_item_t *item = dropped;
        dropped = item->lane_next;
        item->lane_next = NULL;
        item->ready_next = NULL;
        if (drop)
            drop(item, opaque);
    }
    return count;
}

size_t pgs_lanes_queued(const pgs_lanes_t *lanes)
{
    return lanes->queued;
}

size_t pgs_lanes_ready(const pgs_lanes_t *lanes)
{
    return lanes->ready;
}

size_t pgs_lanes_groups(const pgs_lanes_t *lanes)
{
    return lanes->groups.count;
}

size_t pgs_lanes_in_flight(const pgs_lanes_t *lanes)
{
    return lanes->in_flight;
}
