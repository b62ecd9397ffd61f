/* Retry backoff with full jitter, pure code. */
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
