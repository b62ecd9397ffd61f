/* What `pgscribe anonymize` copies: the entity tables of the source schema
 * (a clinic_id column and a primary key), each column's mask from
 * pgscribe.column_policy (migration 0016) with its pseudonym domain, checked
 * against the target's tables before any row moves. */
#ifndef PGSCRIBE_ANON_PLAN_H
#define PGSCRIBE_ANON_PLAN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "command/keys_table.h"
#include "common/mask.h"

typedef struct {
    pgs_mask_t mask;
    pgs_mask_form_t form;
    char *clear_type;    /* the type the value has in clear (plain_type if sealed) */
    char *domain_entity; /* pseudonym domain: "schema.table" ... */
    char *domain_column; /* ... and column */
    int canon;           /* sealed, masked by value, not text: cast before masking */
} pgs_anon_col_t;

typedef struct {
    pgs_ktable_t kt;       /* columns in source order */
    pgs_anon_col_t *cols;  /* kt.ncols, parallel to kt.cols */
    int npseudonym, nseal; /* columns that need a pseudonym key / a field key */
} pgs_anon_table_t;

typedef struct {
    char *schema;
    pgs_anon_table_t *tables;
    int ntables;
} pgs_anon_plan_t;

/**
 * @brief Reads the entity tables of @p schema on @p src with their masks,
 *        and checks each against @p dst: the table exists with every
 *        column, of the clear type, nullable where the mask is null. A
 *        pseudonym needs a text or uuid column, a year a date or timestamp;
 *        a primary-key column is kept or pseudonymised.
 * @returns 0, or -1 with @p err naming the table and column (never a value).
 */
int pgs_anon_plan_load(PGconn *src, PGconn *dst, const char *schema, pgs_anon_plan_t *plan,
                       char *err, size_t errlen);
void pgs_anon_plan_free(pgs_anon_plan_t *plan);

#endif
