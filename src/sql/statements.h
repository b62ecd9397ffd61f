/* Statement registry: every statement shape seen (single-command and
 * multi-row) gets a small id, its SQL text, a prepared-statement name and a
 * window of observed latencies. Shared by all connections of a pool. */
#ifndef PGSCRIBE_STATEMENTS_H
#define PGSCRIBE_STATEMENTS_H

#include <stddef.h>

#include "policy/resilience.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"

typedef struct {
    int batch; /* 1: multi-row statement of bs; 0: single-command of bs.shape */
    pgs_bshape_t bs;
    char *sql;
    char name[24];
    pgs_latency_t latency; /* of the transactions that carried it */
} pgs_stmt_t;

typedef struct pgs_stmts_s pgs_stmts_t;

pgs_stmts_t *pgs_statements_new(const char *schema);
void pgs_statements_free(pgs_stmts_t *st);
/** @brief Id of the single-command statement of @p shape (registered on first use). */
int pgs_statements_single(pgs_stmts_t *st, const pgs_shape_t *shape);
/** @brief Id of the multi-row statement of @p bs (registered on first use). */
int pgs_statements_batch(pgs_stmts_t *st, const pgs_bshape_t *bs);
/** @brief The statement of an id; the pointer is valid until the next registration. */
pgs_stmt_t *pgs_statements_get(pgs_stmts_t *st, int id);
size_t pgs_statements_count(const pgs_stmts_t *st);

#endif
