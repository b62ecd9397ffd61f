/* Retry backoff with full jitter and the retry budget, pure code. */
#include "policy/backoff.h"

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

/* A time budget rather than a count alone: a checkpoint storm or a lock
 * queue of two minutes produces many quick failures, and a count of them
 * would dead-letter valid commands that a little more patience applies. */
int pgs_backoff_exhausted(int attempts, int max_attempts, int64_t elapsed_us,
                          int64_t max_elapsed_us)
{
    if (max_attempts > 0 && attempts >= max_attempts)
        return 1;
    return max_elapsed_us > 0 && elapsed_us >= max_elapsed_us;
}
