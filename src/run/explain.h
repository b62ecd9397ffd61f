/* EXPLAIN of a sample statement on a side connection: a helper thread runs
 * one EXPLAIN (ANALYZE, BUFFERS) at a time on a PGconn of its own, never a
 * pool connection, so the worker's loop never waits on it. */
#ifndef PGSCRIBE_EXPLAIN_H
#define PGSCRIBE_EXPLAIN_H

#include <stddef.h>

typedef struct pgs_explain_s pgs_explain_t;

/** @brief An explainer connecting (lazily, on its first request) with
 *         @p conninfo, the worker's own, so the same role and RLS apply. */
pgs_explain_t *pgs_explain_new(const char *conninfo);
/** @brief Waits for a request under way, then closes the side connection. */
void pgs_explain_free(pgs_explain_t *x);
/**
 * @brief Starts one EXPLAIN of @p sql with the bind values of one real
 *        execution, in BEGIN … ROLLBACK with clinic @p clinic set as the
 *        transaction setup sets it, statement_timeout and lock_timeout of
 *        @p timeout_ms, and a generic plan, so the plan shows $n, never a
 *        value. Copies everything; returns at once.
 * @returns 0 started, 1 when one is under way, -1 when no thread started.
 * @locality main thread
 */
int pgs_explain_start(pgs_explain_t *x, const char *sql, const char *clinic, int n,
                      const char *const *values, const int *lengths, const int *formats,
                      int timeout_ms);
/** @returns nonzero while a request is under way or its result not taken. */
int pgs_explain_busy(const pgs_explain_t *x);
/**
 * @brief Takes a finished request's result, never waiting.
 * @returns 0 while none has finished; 1 with the plan text (malloc'ed, the
 *          caller frees it) in @p *plan, or with *plan NULL and a value-free
 *          reason (SQLSTATE or connection failure) in @p errstr.
 * @locality main thread
 */
int pgs_explain_take(pgs_explain_t *x, char **plan, char *errstr, size_t errstr_size);

#endif
