/* `pgscribe keys protect`: the PHI columns of a schema still in clear become
 * field-encrypted bytea, existing rows sealed (docs/keys.md). */
#ifndef PGSCRIBE_KEYS_PROTECT_H
#define PGSCRIBE_KEYS_PROTECT_H

#include <libpq-fe.h>

#include "common/keyring.h"

/** @brief Protects every table of @p schema with a PHI column in clear, one
 *         transaction per table, sealing each row under its clinic's current
 *         field key of @p ring. @returns PGS_EXIT_OK or PGS_EXIT_FAILURE
 *         (the failing table's transaction rolled back; tables done before
 *         stay done). */
int pgs_keys_protect(PGconn *pg, const char *schema, const PgsKeyring *ring);

#endif
