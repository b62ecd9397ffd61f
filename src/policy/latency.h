/* Recent statement latencies and the adaptive timeout derived from them, pure code. */
#ifndef PGSCRIBE_LATENCY_H
#define PGSCRIBE_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/** Recent latencies of one statement shape, and the timeout derived from them. */
#define PGS_LATENCY_WINDOW 128
typedef struct {
    uint32_t samples_us[PGS_LATENCY_WINDOW];
    uint32_t count; /* samples recorded, saturating at UINT32_MAX */
    uint32_t next;
    int64_t p99_us; /* recomputed every 32 samples; -1 until 32 samples exist */
} pgs_latency_t;

void pgs_latency_init(pgs_latency_t *l);
void pgs_latency_record(pgs_latency_t *l, int64_t us);

/**
 * @brief Adaptive timeout: @p factor × @p p99_us, clamped to [min_us, max_us].
 *        Without enough samples (p99_us < 0) the upper bound is used.
 *        max_us == 0 means disabled and returns 0.
 */
int64_t pgs_latency_timeout_adaptive(int64_t p99_us, double factor, int64_t min_us, int64_t max_us);

#endif
