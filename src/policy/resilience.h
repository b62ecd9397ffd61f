/* Resilience policies, pure code: retry backoff with full jitter, the
 * database circuit breaker, and adaptive timeouts from observed latency. */
#ifndef PGSCRIBE_RESILIENCE_H
#define PGSCRIBE_RESILIENCE_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Delay before retry number @p attempt (1 = first retry): a uniform
 *        random value in [0, min(max_us, initial_us * 2^(attempt-1))]
 *        ("full jitter"). @p rng is a xorshift state, never 0.
 */
int64_t pgs_backoff_delay_us(int attempt, int64_t initial_us, int64_t max_us, uint64_t *rng);

typedef enum {
    PGS_BREAKER_CLOSED = 0, /* dispatch runs */
    PGS_BREAKER_OPEN,       /* database unreachable: no dispatch, probes only */
    PGS_BREAKER_HALF_OPEN,  /* a probe connected: dispatch runs, one commit closes it */
} pgs_breaker_state_t;

typedef struct {
    pgs_breaker_state_t state;
    int failures;  /* consecutive */
    int threshold; /* failures that open it */
    int64_t probe_initial_us, probe_max_us;
    int64_t probe_delay_us; /* current, doubles up to probe_max_us */
    int64_t next_probe_us;
    int64_t opened_at_us;
    int64_t last_open_duration_us; /* of the latest open → closed cycle */
    uint64_t opened_count;
} pgs_breaker_t;

void pgs_breaker_init(pgs_breaker_t *b, int threshold, int64_t probe_initial_us,
                      int64_t probe_max_us);
/** @brief A connection attempt failed or a connection was lost.
 *  @returns 1 if this opened the breaker. */
int pgs_breaker_failure(pgs_breaker_t *b, int64_t now_us);
/** @brief A probe (connection attempt while open) succeeded: half-open. */
void pgs_breaker_probe_ok(pgs_breaker_t *b, int64_t now_us);
/** @brief A probe failed: the next one waits twice as long (bounded). */
void pgs_breaker_probe_failed(pgs_breaker_t *b, int64_t now_us);
/** @brief A transaction committed. @returns 1 if this closed the breaker. */
int pgs_breaker_success(pgs_breaker_t *b, int64_t now_us);
/** @returns 1 when work may be sent to the database. */
int pgs_breaker_allows_dispatch(const pgs_breaker_t *b);
/** @returns 1 when the breaker is open and a probe is due. */
int pgs_breaker_probe_due(const pgs_breaker_t *b, int64_t now_us);
const char *pgs_breaker_state_name(pgs_breaker_state_t s);

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
int64_t pgs_timeout_adaptive(int64_t p99_us, double factor, int64_t min_us, int64_t max_us);

#endif
