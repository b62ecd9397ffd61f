/* Retry backoff with full jitter and the retry budget, pure code. */
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

/**
 * @brief Whether a command hit by a transient error has spent its retry
 *        budget: @p attempts reached @p max_attempts (when > 0) or
 *        @p elapsed_us since its first failure reached @p max_elapsed_us
 *        (when > 0).
 */
int pgs_backoff_exhausted(int attempts, int max_attempts, int64_t elapsed_us,
                          int64_t max_elapsed_us);

#endif
