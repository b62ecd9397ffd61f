/* The statement around every command write: idempotency record, write, row check. */
#ifndef PGSCRIBE_SQLENVELOPE_H
#define PGSCRIBE_SQLENVELOPE_H

#include "codec/command.h"

/**
 * @brief The one shape of a command statement, for one command (bind
 *        parameters) or many (arrays): record the command ids with their
 *        content digests in pgscribe.applied_commands (ON CONFLICT DO
 *        NOTHING); for an id recorded before, compare digests through
 *        pgscribe.expect_same_command (equal: a duplicate; different:
 *        SQLSTATE PS002, the id was reused for other content); apply
 *        @p write (CTE w, which this closes with RETURNING 1), and check
 *        through pgscribe.expect_rows / expect_all that every fresh command
 *        touched a row. A redelivered command is in no CTE after the first,
 *        so it changes nothing. The write audit of the fresh commands is
 *        the transaction's last statement (txnaudit.h), which finds them by
 *        the idempotency rows this statement inserts.
 * @param input NULL for one command, whose fields are the fixed bind
 *        parameters $1..$5 of sqlgen.h; for many, the query the CTE "input"
 *        is (columns command_id, kpart, koff, digest, ord; $1 clinic_id,
 *        $2 topic): a command id repeated in it counts once, and only if
 *        every repeat has the first one's digest.
 * @param digest_param for one command, the number of its bytea digest
 *        parameter; ignored for many (the input's digest column).
 * @param write the INSERT, UPDATE or DELETE, reading its rows from bind
 *        parameters (guarded by EXISTS (SELECT 1 FROM ins)) or from "fresh".
 * @returns the SQL text (malloc'd).
 */
char *pgs_sqlenvelope_statement(const char *input, int digest_param, const char *write);

#endif
