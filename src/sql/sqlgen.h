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

/* The fixed leading parameters of every command statement. The last
 * parameter, after the key, data and expected_version ones, is the command's
 * content digest (bytea, hex text): see pgs_sqlgen_digest_param. What the
 * write audit needs of a command (actor, row key, issue time, trace) goes
 * in the transaction's write audit statement instead (txnaudit.h). */
enum {
    PGS_PARAM_COMMAND_ID = 0, /* $1 uuid text */
    PGS_PARAM_CLINIC_ID,      /* $2 */
    PGS_PARAM_TOPIC,          /* $3 */
    PGS_PARAM_PARTITION,      /* $4 */
    PGS_PARAM_OFFSET,         /* $5 */
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
 *        DELETE (or a versioned UPSERT) matches no row, and PS002 when the
 *        command id was recorded for a command of other content.
 */
char *pgs_sqlgen_statement(const char *schema, const pgs_shape_t *shape);

/** @returns the 1-based number of the shape's digest parameter, the last. */
int pgs_sqlgen_digest_param(const pgs_shape_t *shape);

/** Room for a digest's bytea hex text, "\\x" and 64 digits and a NUL. */
#define PGS_SQLGEN_DIGEST_HEX_SIZE 67
/** @brief Writes the bytea hex input text of @p cmd's content digest
 *         (pgs_digest_command) to @p out. */
void pgs_sqlgen_digest_hex(const pgs_entity_t *ent, const pgs_command_t *cmd,
                           char out[PGS_SQLGEN_DIGEST_HEX_SIZE]);

/** Bind parameters for one command, as libpq wants them. */
typedef struct {
    int n;
    const char *values[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 4];
    int lengths[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 4];
    int formats[PGS_PARAM_FIXED_COUNT + PGS_MAX_DATA_COLS + PGS_MAX_KEY_COLS + 4];
    char scratch[2048]; /* numbers and small texts rendered here */
    size_t scratch_used;
} pgs_params_t;

/**
 * @brief Fills @p params for @p cmd in the order pgs_sqlgen_statement uses:
 *        fixed params, then key columns (entity pk order), then data columns
 *        (shape order), then expected_version, then the content digest.
 *        Texts that do not fit the params' scratch are allocated in
 *        @p cmd's arena.
 */
void pgs_sqlgen_params(const pgs_shape_t *shape, const pgs_command_t *cmd, const char *topic,
                       int32_t partition, int64_t offset, pgs_params_t *params);

/** @brief The key map as compact JSON text, for the write audit row
 *         (allocated in @p cmd's arena). */
const char *pgs_sqlgen_row_key_json(const pgs_command_t *cmd);

#endif
