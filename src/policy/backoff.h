/* Retry backoff with full jitter, pure code. */
#ifndef PGSCRIBE_BACKOFF_H
#define PGSCRIBE_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Delay before retry number @p attempt (1 = first retry): a uniform
 *        random value in [0, min(max_us, initial_us * 2^(attempt-1))]
 *        ("full jitter"). @p rng is a xorshift state, never 0.
 */
int64_t pgs_backoff_delay_us(int attempt, int64_t initial_us, int64_t max_us, uint64_t *rng);

#endif
