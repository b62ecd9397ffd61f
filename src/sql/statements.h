/* Statement registry: every statement shape in use (single-command and
 * multi-row) gets a handle, its SQL text, a prepared-statement name and a
 * window of observed latencies. Shared by all connections of a pool and
 * bounded: beyond apply.max_statements the least recently used shape is
 * evicted, and connections deallocate what they prepared of it. */
#ifndef PGSCRIBE_STATEMENTS_H
#define PGSCRIBE_STATEMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "policy/resilience.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"

typedef struct {
    int batch; /* 1: multi-row statement of bs; 0: single-command of bs.shape */
    pgs_bshape_t bs;
    char *sql;
    /* never reused while the registry lives, so a name on the server always
     * means one SQL text: a connection holding an evicted statement's name
     * can never mistake it for the shape that took its slot */
    uint64_t serial;
    char name[32];
    pgs_latency_t latency; /* of the transactions that carried it */
    int stats_slot;        /* the owner's statistics row of the shape, plus 1; 0 not yet */
} pgs_stmt_t;

typedef struct pgs_stmts_s pgs_stmts_t;

/** @brief A registry keeping at most @p max statements between epochs. */
pgs_stmts_t *pgs_statements_new(const char *schema, size_t max);
void pgs_statements_free(pgs_stmts_t *st);
/**
 * @brief Starts an epoch (one transaction being built): statements used from
 *        now on are not evicted before the next epoch, so handles taken while
 *        building one transaction stay valid together; the registry exceeds
 *        its bound only as far as one transaction needs.
 */
void pgs_statements_epoch(pgs_stmts_t *st);
/** @brief Handle of the single-command statement of @p shape (registered on first use). */
int pgs_statements_single(pgs_stmts_t *st, const pgs_shape_t *shape);
/** @brief Handle of the multi-row statement of @p bs (registered on first use). */
int pgs_statements_batch(pgs_stmts_t *st, const pgs_bshape_t *bs);
/** @brief The statement of a handle, or NULL once it was evicted; the pointer
 *         is valid until the next registration. */
pgs_stmt_t *pgs_statements_get(pgs_stmts_t *st, int handle);
/** @brief The slot of a handle: a small index, reused after eviction. */
size_t pgs_statements_slot(int handle);
/** @brief The serial of the statement now in @p slot, or 0 when it is empty. */
uint64_t pgs_statements_slot_serial(const pgs_stmts_t *st, size_t slot);
/** @brief The server-side name of the statement of @p serial. */
void pgs_statements_name(uint64_t serial, char *buf, size_t size);
/** @brief Evicts every statement whose shape is of an entity of @p cat. */
size_t pgs_statements_drop_catalog(pgs_stmts_t *st, const pgs_catalog_t *cat);
/** @returns the statements held now. */
size_t pgs_statements_count(const pgs_stmts_t *st);
/** @returns the statements evicted so far. */
uint64_t pgs_statements_evicted(const pgs_stmts_t *st);

#endif
