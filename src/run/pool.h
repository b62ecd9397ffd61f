/* The connection pool of one stream and its transactions (apply). */
#ifndef PGSCRIBE_POOL_H
#define PGSCRIBE_POOL_H

#include <stdint.h>

#include "run/work.h"

typedef struct pgs_worker_s pgs_worker_t;

/* apply.c: the connection pool and its transactions */
pgs_pool_t *pgs_pool_new(pgs_worker_t *w, pgs_stream_t *stream, const char *conninfo, int size,
                         char *errstr, size_t errstr_size);
void pgs_pool_free(pgs_pool_t *pool);
/** @brief Starts transactions on idle connections for ready lane items. */
void pgs_pool_dispatch(pgs_pool_t *pool);
/** @brief Handles I/O readiness of the connection registered with @p tag. */
void pgs_pool_on_event(pgs_pool_t *pool, void *tag, uint32_t events);
/** @brief Periodic upkeep: reconnects broken connections. */
void pgs_pool_tick(pgs_pool_t *pool);
/** @brief Applies reloaded settings (the breaker's) after SIGHUP. */
void pgs_pool_reconfigure(pgs_pool_t *pool);
/** @brief "closed", "open" or "half-open". */
const char *pgs_pool_breaker_state(const pgs_pool_t *pool);
int pgs_pool_breaker_open(const pgs_pool_t *pool);
/** @returns how many of the pool's transactions are open now. */
int pgs_pool_busy(const pgs_pool_t *pool);
/** @returns how many transactions the pool may have in flight now. */
int pgs_pool_in_flight_limit(const pgs_pool_t *pool);
int pgs_pool_size(const pgs_pool_t *pool);

#endif
