/* Outcome: how the worker takes the apply pool's reports (counters,
 * completion, dead letters, its epoll set). */
#ifndef PGSCRIBE_OUTCOME_H
#define PGSCRIBE_OUTCOME_H

#include "run/pool.h"

/** The worker's pool callbacks; their opaque is the pgs_worker_t. */
extern const pgs_pool_ops_t pgs_outcome_ops;

#endif
