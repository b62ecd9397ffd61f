/* The write audit of a transaction: one statement, the transaction's last
 * before COMMIT, appends one chained audit.events row (kind 'write') for
 * every command the transaction applied, under one lock of the clinic's
 * chain head, through audit.append_transaction_writes (migration 0018). */
#ifndef PGSCRIBE_TXNAUDIT_H
#define PGSCRIBE_TXNAUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "codec/command.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"

/** Prepared-statement name and SQL text; one result row: rows appended. */
#define PGS_TXNAUDIT_NAME "pgs_txn_write_audit"
const char *pgs_txnaudit_statement(void);
#define PGS_TXNAUDIT_NPARAMS 11

/** One command of the transaction: the command, its (single) shape, whose
 *  columns are those the audit row names, and where it was read. */
typedef struct {
    const pgs_command_t *cmd;
    const pgs_shape_t *shape;
    int32_t partition;
    int64_t offset;
} pgs_txnaudit_row_t;

/**
 * @brief Parameters for @p n commands of one clinic, in statement order: the
 *        commands' ids, actors, issue times (ms), row keys (JSON), column
 *        names (each the text of a text[] literal), partitions, offsets,
 *        traceparents (NULL when untraced), entities and ops, then @p topic.
 *        The database appends a row only for a command whose idempotency
 *        record this transaction inserted (a duplicate was audited when it
 *        was applied), and for a repeated id only the first.
 */
void pgs_txnaudit_params(const pgs_txnaudit_row_t *rows, size_t n, const char *topic,
                         pgs_batch_params_t *out);

#endif
