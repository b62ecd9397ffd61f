/* Multi-row statements: the commands of one transaction that share a batch
 * shape are applied by ONE statement over arrays (unnest), doing for every
 * row what the single-command statement does for one: idempotency record
 * and write. Round trips and per-statement cost are what this saves;
 * a failing multi-row statement is re-run command by command to find the
 * culprit. Identifiers come only from the catalog; values only as arrays. */
#ifndef PGSCRIBE_SQLBATCH_H
#define PGSCRIBE_SQLBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "codec/command.h"
#include "sql/sqlgen.h"

typedef struct {
    pgs_shape_t shape; /* entity, op, expected_version flag, columns */
    int mask;          /* UPDATE: every updatable column, each with a "set" flag */
} pgs_bshape_t;

/**
 * @brief The batch shape of a validated command whose single shape is @p single.
 *        INSERT, UPSERT and DELETE keep the exact column set; UPDATE takes every
 *        updatable column with a presence mask, so partial updates of one
 *        entity share a statement.
 * @returns 0, or -1 when the command needs the single-command statement
 *          (a versioned UPSERT, or an array-typed column).
 */
int pgs_sqlbatch_shape_of(const pgs_entity_t *ent, const pgs_command_t *cmd,
                          const pgs_shape_t *single, pgs_bshape_t *bs);
int pgs_sqlbatch_shape_equal(const pgs_bshape_t *a, const pgs_bshape_t *b);

/**
 * @brief SQL text (malloc'd). Parameters: $1 clinic_id, $2 topic, $3 uuid[]
 *        command ids, $4 int[] partitions, $5 bigint[] offsets, then one
 *        array per key column, one per data column (and one bool[] per
 *        column for a mask), then bigint[] expected versions, then bytea[]
 *        content digests, then text[] each row's clinic. One result row:
 *        the number of commands applied (the others were duplicates). Raises
 *        PS001 when an UPDATE or DELETE matched fewer rows than it had fresh
 *        commands, PS002 when a command id was recorded (before, or by an
 *        earlier row of the same statement) for other content.
 */
char *pgs_sqlbatch_statement(const char *schema, const pgs_bshape_t *bs);

typedef struct {
    int n;
    char **values; /* malloc'd array literals and texts, or pointers into block */
    char *block;   /* when set, one allocation holding every value, NUL-ended */
} pgs_batch_params_t;

/** @brief Builds the parameters of @p n commands (all of @p bs and of one
 *         clinic) in statement order. Free with pgs_sqlbatch_params_free. */
void pgs_sqlbatch_params(const pgs_bshape_t *bs, const pgs_command_t *const *cmds,
                         const int32_t *partitions, const int64_t *offsets, size_t n,
                         const char *topic, pgs_batch_params_t *out);
void pgs_sqlbatch_params_free(pgs_batch_params_t *p);

/* Array literal building, shared with the audit statements. */
#include "common/sbuf.h"
/** @brief Appends "{" before element 0 and "," before the others. */
void pgs_sqlbatch_array_sep(pgs_sbuf_t *sb, size_t i);
/** @brief Appends one quoted element (backslash and double quote escaped). */
void pgs_sqlbatch_put_element(pgs_sbuf_t *sb, const char *s, size_t len);
/** @brief The array literal of @p n integers ("{1,2,3}"; "{}" for none), malloc'd. */
char *pgs_sqlbatch_array_int32(const int32_t *v, size_t n);
char *pgs_sqlbatch_array_int64(const int64_t *v, size_t n);
/** @brief Closes the literal with "}" and hands its text over (malloc'd). */
char *pgs_sqlbatch_array_close(pgs_sbuf_t *sb);

#endif
