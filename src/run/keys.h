/* The worker's keyring (crypto.keyring): read once at start, read again on
 * SIGHUP so a `pgscribe keys rotate` takes effect without a restart. The
 * field encryption of PHI columns and of dead-letter values reads it through
 * pgs_keys_ring(); both copy what they need, so a reload may free the old
 * keyring at once. */
#ifndef PGSCRIBE_RUN_KEYS_H
#define PGSCRIBE_RUN_KEYS_H

#include <stddef.h>

#include "common/keyring.h"

typedef struct pgs_worker_s pgs_worker_t;

/** @brief Loads crypto.keyring (nothing when it is empty). Returns 0, or -1
 *         with @p err naming the problem (never key material): a worker with
 *         a configured but unreadable keyring does not start. */
int pgs_keys_start(pgs_worker_t *w, char *err, size_t errlen);

/** @brief SIGHUP: reads crypto.keyring again. A valid file replaces the
 *         keyring in use (logged with its key count and current key ids); an
 *         invalid one is logged and the old keyring kept; an emptied setting
 *         drops the keyring. */
void pgs_keys_reload(pgs_worker_t *w);

/** @brief The keyring in use, or NULL when none is configured. */
const PgsKeyring *pgs_keys_ring(const pgs_worker_t *w);

/** @brief Wipes and frees the keyring. */
void pgs_keys_stop(pgs_worker_t *w);

#endif
