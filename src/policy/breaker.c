/* The database circuit breaker, pure code: closed, open (probes only), half-open. */
#include "policy/breaker.h"

#include <string.h>

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
