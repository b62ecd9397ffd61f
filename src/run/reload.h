/* Catalog reload off the event loop: a helper thread introspects the schema
 * on a connection of its own and hands the catalog back through an eventfd
 * the worker's epoll watches. */
#ifndef PGSCRIBE_RELOAD_H
#define PGSCRIBE_RELOAD_H

#include <stddef.h>

#include "catalog/catalog.h"

typedef struct pgs_reload_s pgs_reload_t;

/** What the helper thread runs: a catalog, or NULL with the reason in @p errstr. */
typedef pgs_catalog_t *(*pgs_reload_load_fn)(void *arg, char *errstr, size_t errstr_size);

/** @brief A reloader whose loads run @p load (NULL: pgs_reload_from_db) with @p arg. */
pgs_reload_t *pgs_reload_new(pgs_reload_load_fn load, void *arg);
/** @brief Waits for a load under way, then frees it (and a result not taken). */
void pgs_reload_free(pgs_reload_t *r);
/** @returns the eventfd that becomes readable when a load has finished. */
int pgs_reload_fd(const pgs_reload_t *r);
/**
 * @brief Starts a load on the helper thread and returns at once.
 * @returns 0 started; 1 when one is under way (a second is not started: the
 *          caller asks again once this one is taken); -1 when no thread could
 *          be started (@p errstr says why).
 */
int pgs_reload_start(pgs_reload_t *r, char *errstr, size_t errstr_size);
/** @returns nonzero while a load is under way or its result is not yet taken. */
int pgs_reload_busy(const pgs_reload_t *r);
/**
 * @brief Takes a finished load's result, never waiting.
 * @returns 0 while none has finished; 1 with the new catalog in @p *cat, or
 *          with *cat NULL and the reason in @p errstr.
 */
int pgs_reload_take(pgs_reload_t *r, pgs_catalog_t **cat, char *errstr, size_t errstr_size);

/** Where pgs_reload_from_db connects and what it introspects. */
typedef struct {
    const char *conninfo;
    const char *schema;
    int connect_timeout_s;
} pgs_reload_db_t;

/** @brief The default load: connects (blocking, on the helper thread) with
 *         @p arg, a pgs_reload_db_t, and runs pgs_catalog_load. */
pgs_catalog_t *pgs_reload_from_db(void *arg, char *errstr, size_t errstr_size);

#endif
