/* SQL generation: one prepared statement per (entity, op, column set,
 * expected_version) shape. Identifiers come only from the catalog and are
 * quoted; values travel only as bind parameters. */
#ifndef PGSCRIBE_SQLGEN_H
#define PGSCRIBE_SQLGEN_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "codec/command.h"
#include "codec/value.h"

/* The fixed leading parameters of every command statement. */
enum {
    PGS_PARAM_COMMAND_ID = 0, /* $1 uuid text */
    PGS_PARAM_CLINIC_ID,      /* $2 */
    PGS_PARAM_ACTOR,          /* $3 */
    PGS_PARAM_TOPIC,          /* $4 */
    PGS_PARAM_PARTITION,      /* $5 */
    PGS_PARAM_OFFSET,         /* $6 */
    PGS_PARAM_ROW_KEY,        /* $7 jsonb text of the key map, for the audit row */
    PGS_PARAM_FIXED_COUNT
};

/** A statement shape: the columns a command sets, by catalog index. */
typedef struct {
    const pgs_entity_t *ent;
    pgs_op_t op;
    int has_expected_version;
    int ncols;
    int cols[PGS_MAX_DATA_COLS]; /* data column indexes, ascending */
    uint64_t hash;
} pgs_shape_t;

/** @brief Computes the shape of a validated command. -1 if > 64 data columns. */
int pgs_sqlgen_shape_of(const pgs_entity_t *ent, const pgs_command_t *cmd, pgs_shape_t *shape);
/** @returns 1 if equal. */
int pgs_sqlgen_shape_equal(const pgs_shape_t *a, const pgs_shape_t *b);

/**
 * @brief SQL text of the shape's statement (malloc'd; see sqlgen.c for the
 *        template). Its single result row is (fresh int): 1 = applied,
 *        0 = duplicate command id. It raises SQLSTATE PS001 when an UPDATE or
 *        DELETE (or a versioned UPSERT) matches no row.
 */
char *pgs_sqlgen_statement(const char *schema, const pgs_shape_t *shape);

/** Bind parameters for one command, as libpq wants them. */
typedef struct {
    int n;
    const char *values[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 1];
    int lengths[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 1];
    int formats[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 1];
    char scratch[2048]; /* numbers and small texts rendered here */
    size_t scratch_used;
} pgs_params_t;

/**
 * @brief Fills @p params for @p cmd in the order pgs_sqlgen_statement uses:
 *        fixed params, then key columns (entity pk order), then data columns
 *        (shape order), then expected_version. Large texts (row key JSON) are
 *        allocated in @p cmd's arena.
 */
void pgs_sqlgen_params(const pgs_shape_t *shape, const pgs_command_t *cmd, const char *topic,
                       int32_t partition, int64_t offset, pgs_params_t *params);

/** @brief The key map as compact JSON text, for the audit row (allocated in
 *         @p cmd's arena). */
const char *pgs_sqlgen_row_key_json(const pgs_command_t *cmd);

#endif
