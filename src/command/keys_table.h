/* What `pgscribe keys`, `rekey` and `show` learn of one target table: its
 * columns, primary key and field-encryption policy, and the SQL of its
 * canonical row key (catalog/fieldseal.h). */
#ifndef PGSCRIBE_KEYS_TABLE_H
#define PGSCRIBE_KEYS_TABLE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "common/fieldcrypt.h"
#include "common/keyring.h"
#include "common/sbuf.h"

typedef struct {
    char *name;
    char *type;       /* format_type() text */
    int pk_pos;       /* 1-based place in the primary key, 0: not in it */
    int is_phi;       /* marked in pgscribe.column_policy */
    int sealed;       /* encrypted (bytea envelopes) */
    char *plain_type; /* the clear type of a sealed column */
} pgs_ktcol_t;

typedef struct {
    char *schema;
    char *table;
    pgs_ktcol_t *cols;
    int ncols;
    int has_clinic;
} pgs_ktable_t;

/** @brief Reads @p schema.@p table. @returns 0, or -1 with @p err set (no
 *         such table, no primary key). */
int pgs_ktable_load(PGconn *pg, const char *schema, const char *table, pgs_ktable_t *t, char *err,
                    size_t errlen);
void pgs_ktable_free(pgs_ktable_t *t);

/** @brief Appends the quoted "schema"."table". */
void pgs_ktable_ident(pgs_sbuf_t *sb, const pgs_ktable_t *t);
/** @brief Appends the canonical row key expression over the table's columns
 *         (alias @p alias, may be NULL): concat_ws(E'\x1f', pk::text, ...). */
void pgs_ktable_row_key_sql(pgs_sbuf_t *sb, const pgs_ktable_t *t, const char *alias);

/** @brief The names of the tables of @p schema with a PHI column, as a
 *         result to PQclear (column 0), or NULL with @p err set. */
PGresult *pgs_ktable_phi_tables(PGconn *pg, const char *schema, char *err, size_t errlen);

/** @brief Loads the keyring at @p path (NULL: an error). */
PgsKeyring *pgs_ktable_keyring(const char *path, char *err, size_t errlen);

/** @brief Connects, printing libpq's error (first line) on failure. */
PGconn *pgs_ktable_connect(const char *conninfo, const char *who);

/** @brief Runs @p sql; 0, or -1 with the error printed after @p who. */
int pgs_ktable_exec(PGconn *pg, const char *sql, const char *who);

#endif
