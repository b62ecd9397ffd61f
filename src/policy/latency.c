/* Recent statement latencies and the adaptive timeout derived from them, pure code. */
#include "policy/latency.h"

#include <stdlib.h>
#include <string.h>

void pgs_latency_init(pgs_latency_t *l)
{
    memset(l, 0, sizeof(*l));
    l->p99_us = -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void pgs_latency_record(pgs_latency_t *l, int64_t us)
{
    l->samples_us[l->next] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    l->next = (l->next + 1) % PGS_LATENCY_WINDOW;
    if (l->count < UINT32_MAX)
        l->count++;
    if (l->count % 32 != 0)
        return;
    /* recompute the p99 over the window every 32 samples: cheap, and recent */
    uint32_t n = l->count < PGS_LATENCY_WINDOW ? l->count : PGS_LATENCY_WINDOW;
    uint32_t sorted[PGS_LATENCY_WINDOW];
    memcpy(sorted, l->samples_us, n * sizeof(uint32_t));
    qsort(sorted, n, sizeof(uint32_t), cmp_u32);
    uint32_t idx = (uint32_t)((n * 99 + 99) / 100);
    l->p99_us = sorted[idx > 0 ? idx - 1 : 0];
}

int64_t pgs_latency_timeout_adaptive(int64_t p99_us, double factor, int64_t min_us, int64_t max_us)
{
    if (max_us <= 0)
        return 0;
    if (p99_us < 0)
        return max_us;
    int64_t t = (int64_t)((double)p99_us * factor);
    if (t < min_us)
        t = min_us;
    if (t > max_us)
        t = max_us;
    return t;
}
