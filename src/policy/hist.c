/* Latency histogram: log-linear buckets, 32 per power of two (error <= 1.6%). */
#include "policy/hist.h"

#include <math.h>
#include <string.h>

/* Values below 2^SUB_BITS get one bucket each; above, every power of two is
 * split into 2^SUB_BITS equal buckets, so a bucket is at most 1/32 of its
 * lower bound wide. 1024 buckets reach 2^36 us (about 19 hours). */
#define SUB_BITS 5
#define SUB      (1u << SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    uint64_t idx = (uint64_t)(e - SUB_BITS + 1) * SUB + ((v >> (e - SUB_BITS)) - SUB);
    return idx >= PGS_HIST_BUCKETS ? PGS_HIST_BUCKETS - 1 : (unsigned)idx;
}

/* Middle of the bucket: halves the worst-case error of the upper bound. */
static uint64_t bucket_value(unsigned idx)
{
    if (idx < SUB)
        return idx;
    unsigned e = idx / SUB + SUB_BITS - 1;
    uint64_t width = (uint64_t)1 << (e - SUB_BITS);
    uint64_t lower = (uint64_t)(SUB + idx % SUB) << (e - SUB_BITS);
    return lower + (width - 1) / 2;
}

void pgs_hist_reset(pgs_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void pgs_hist_record(pgs_hist_t *h, uint64_t value_us)
{
    h->counts[bucket_of(value_us)]++;
    h->total++;
    h->sum_us += value_us;
    if (value_us > h->max_us)
        h->max_us = value_us;
}

uint64_t pgs_hist_percentile(const pgs_hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    if (!(p > 0))
        p = 0; /* also catches NaN */
    if (p > 100)
        p = 100;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    /* The top rank is known exactly. */
    if (rank >= h->total)
        return h->max_us;

    uint64_t seen = 0;
    for (unsigned i = 0; i < PGS_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        /* The last bucket is open-ended: only the maximum says where. */
        if (i == PGS_HIST_BUCKETS - 1)
            return h->max_us;
        uint64_t v = bucket_value(i);
        return v < h->max_us ? v : h->max_us;
    }
    return h->max_us;
}

void pgs_hist_merge(pgs_hist_t *dst, const pgs_hist_t *src)
{
    for (unsigned i = 0; i < PGS_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t pgs_hist_count_le(const pgs_hist_t *h, uint64_t bound_us)
{
    if (bound_us >= h->max_us)
        return h->total;
    unsigned last = bucket_of(bound_us);
    uint64_t n = 0;
    for (unsigned i = 0; i <= last; i++)
        n += h->counts[i];
    return n;
}
