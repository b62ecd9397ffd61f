/* The audit maintenance loop (docs/audit.md, "Maintenance"): one worker at a
 * time, elected by a session advisory lock, creates the coming months'
 * partitions of audit.events and refreshes the activity views. The SQL
 * blocks, so it runs on a helper thread with a connection of its own; the
 * main loop only starts passes and reads their results. */
#ifndef PGSCRIBE_MAINT_H
#define PGSCRIBE_MAINT_H

#include <stdint.h>

typedef struct pgs_maint_s pgs_maint_t;

/** The advisory lock key that elects the maintenance worker (per database). */
#define PGS_MAINT_LOCK_KEY 0x70677363726962LL /* "pgscrib" */

/** @brief A loop connecting with @p conninfo; the first pass starts at the
 *         first tick. @p worker_id names this worker in the log lines. */
pgs_maint_t *pgs_maint_new(const char *conninfo, const char *worker_id, int connect_timeout_s);
/**
 * @brief Drives the loop from the main thread, never waiting: takes a
 *        finished pass's result (and logs it), and starts the next pass when
 *        @p interval_ms has passed since the last one started. A worker that
 *        does not hold the lock tries again each interval (at most 30 s).
 * @locality main thread
 */
void pgs_maint_tick(pgs_maint_t *m, int64_t now_us, int64_t interval_ms, int months_ahead);
/** @brief Waits for a pass under way, closes the connection (the lock goes
 *         with it) and frees @p m. */
void pgs_maint_free(pgs_maint_t *m);

#endif
