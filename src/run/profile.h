/* Statement profiles: per statement shape (stream, entity, op, form
 * multi|single) the executions, rows, errors and a histogram of each
 * statement's time in the pipeline (from its send to its result); a shape
 * whose p99 over a window crosses profile.slow_p99_ms gets one EXPLAIN of a
 * sample execution (explain.c), at most one per profile.explain_interval_s. */
#ifndef PGSCRIBE_PROFILE_H
#define PGSCRIBE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/sbuf.h"

/** Shapes with a row of their own; the rest fold into entity "other". */
#define PGS_PROFILE_MAX_SHAPES 200

typedef struct pgs_profile_s pgs_profile_t;

/** @brief A profile reading its profile.* settings from @p cfg while it
 *         runs; EXPLAINs connect with @p conninfo. */
pgs_profile_t *pgs_profile_new(const pgs_config_t *cfg, const char *conninfo);
/** @brief Waits for an EXPLAIN under way, then frees everything. */
void pgs_profile_free(pgs_profile_t *p);
/** @returns the slot of a shape (registered on first use; past the cap, the
 *           slot of its entity="other" row). Never fails. */
int pgs_profile_slot(pgs_profile_t *p, const char *stream, const char *entity, const char *op,
                     int multi);
/** @brief One statement of @p slot answered after @p took_us: @p rows
 *         commands applied, or an error. */
void pgs_profile_record(pgs_profile_t *p, int slot, int64_t took_us, uint64_t rows, int error);
/** @returns nonzero when the next execution of @p slot should be offered
 *           as the sample of an EXPLAIN. */
int pgs_profile_wants_sample(const pgs_profile_t *p, int slot);
/** @brief The statement and bind values of one execution of @p slot: its
 *         EXPLAIN starts on the helper thread (everything is copied). */
void pgs_profile_offer_sample(pgs_profile_t *p, int slot, const char *sql, const char *clinic,
                              int n, const char *const *values, const int *lengths,
                              const int *formats);
/** @brief Closes windows that are over (a slow one asks for a sample) and
 *         logs an EXPLAIN that has finished. @locality main thread */
void pgs_profile_tick(pgs_profile_t *p, int64_t now_us);
/** @brief The table as JSON (the HTTP /profile answer). */
void pgs_profile_json(const pgs_profile_t *p, const char *worker_id, pgs_sbuf_t *sb);
/** @brief The pgscribe_statement_* families in Prometheus' text format. */
void pgs_profile_prom(const pgs_profile_t *p, pgs_sbuf_t *sb);
/** @returns EXPLAINs logged so far. */
uint64_t pgs_profile_explains(const pgs_profile_t *p);

#endif
