/* Resilience policies: backoff with full jitter, circuit breaker, adaptive
 * timeouts. Pure code, driven by the apply pool with explicit clocks. */
#include "policy/resilience.h"

#include <stdlib.h>
#include <string.h>

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int64_t pgs_backoff_delay_us(int attempt, int64_t initial_us, int64_t max_us, uint64_t *rng)
{
    if (attempt < 1)
        attempt = 1;
    int64_t ceiling = initial_us;
    for (int i = 1; i < attempt && ceiling < max_us; i++)
        ceiling *= 2;
    if (ceiling > max_us)
        ceiling = max_us;
    if (ceiling <= 0)
        return 0;
    return (int64_t)(xorshift64(rng) % (uint64_t)(ceiling + 1));
}

void pgs_breaker_init(pgs_breaker_t *b, int threshold, int64_t probe_initial_us,
                      int64_t probe_max_us)
{
    memset(b, 0, sizeof(*b));
    b->threshold = threshold < 1 ? 1 : threshold;
    b->probe_initial_us = probe_initial_us;
    b->probe_max_us = probe_max_us < probe_initial_us ? probe_initial_us : probe_max_us;
    b->probe_delay_us = probe_initial_us;
}

int pgs_breaker_failure(pgs_breaker_t *b, int64_t now_us)
{
    b->failures++;
    if (b->state == PGS_BREAKER_OPEN)
        return 0;
    /* half-open fails back at once: the probe's connection did not hold */
    if (b->state == PGS_BREAKER_HALF_OPEN || b->failures >= b->threshold) {
        int was_closed = b->state == PGS_BREAKER_CLOSED;
        b->state = PGS_BREAKER_OPEN;
        if (was_closed) {
            b->opened_at_us = now_us;
            b->opened_count++;
            b->probe_delay_us = b->probe_initial_us;
        }
        b->next_probe_us = now_us + b->probe_delay_us;
        return was_closed;
    }
    return 0;
}

void pgs_breaker_probe_ok(pgs_breaker_t *b, int64_t now_us)
{
    (void)now_us;
    if (b->state == PGS_BREAKER_OPEN)
        b->state = PGS_BREAKER_HALF_OPEN;
}

void pgs_breaker_probe_failed(pgs_breaker_t *b, int64_t now_us)
{
    b->probe_delay_us *= 2;
    if (b->probe_delay_us > b->probe_max_us)
        b->probe_delay_us = b->probe_max_us;
    b->next_probe_us = now_us + b->probe_delay_us;
}

int pgs_breaker_success(pgs_breaker_t *b, int64_t now_us)
{
    b->failures = 0;
    if (b->state == PGS_BREAKER_CLOSED)
        return 0;
    b->state = PGS_BREAKER_CLOSED;
    b->last_open_duration_us = now_us - b->opened_at_us;
    b->probe_delay_us = b->probe_initial_us;
    return 1;
}

int pgs_breaker_allows_dispatch(const pgs_breaker_t *b)
{
    return b->state != PGS_BREAKER_OPEN;
}

int pgs_breaker_probe_due(const pgs_breaker_t *b, int64_t now_us)
{
    return b->state == PGS_BREAKER_OPEN && now_us >= b->next_probe_us;
}

const char *pgs_breaker_state_name(pgs_breaker_state_t s)
{
    switch (s) {
    case PGS_BREAKER_OPEN:
        return "open";
    case PGS_BREAKER_HALF_OPEN:
        return "half-open";
    default:
        return "closed";
    }
}

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

int64_t pgs_timeout_adaptive(int64_t p99_us, double factor, int64_t min_us, int64_t max_us)
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
