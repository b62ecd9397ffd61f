/* The database circuit breaker, pure code: closed, open (probes only), half-open. */
#ifndef PGSCRIBE_BREAKER_H
#define PGSCRIBE_BREAKER_H

#include <stddef.h>
#include <stdint.h>

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

#endif
