/* One table of one clinic into a masked copy: rows read from the source by
 * a cursor in batches, sealed values decrypted, every value masked per the
 * plan, and each batch COPYed into a staging table of the target and
 * inserted from it under the target's clinic wall. Memory is one batch. */
#ifndef PGSCRIBE_ANON_COPY_H
#define PGSCRIBE_ANON_COPY_H

#include <libpq-fe.h>

#include "command/anon_plan.h"
#include "common/keyring.h"

typedef struct {
    PGconn *src, *dst; /* each in its transaction, pgscribe.clinic_id set */
    const PgsKeyring *ring;
    const PgsKey *pkey; /* the clinic's pseudonym key (NULL: none needed) */
    int batch;          /* rows per FETCH and per insert */
    int bar;            /* a progress bar on stderr, else a line per table */
    const char *who;
} pgs_anon_copy_t;

/** @brief Deletes @p clinic's rows from the target's tables of @p plan,
 *         referencing tables first. @returns 0, or -1 (printed). */
int pgs_anon_clear(pgs_anon_copy_t *c, const pgs_anon_plan_t *plan, const char *clinic);

/**
 * @brief Copies @p clinic's rows of table @p ti of @p plan into the target,
 *        masked (after pgs_anon_clear, in plan order: referenced first).
 * @returns the number of rows copied, or -1 with the error on stderr (it
 *          names table, column, clinic and row key, never a value).
 */
long pgs_anon_copy_table(pgs_anon_copy_t *c, const pgs_anon_plan_t *plan, int ti,
                         const char *clinic);

#endif
