/* Catalog reload off the event loop: a helper thread introspects the schema
 * on a connection of its own and hands the catalog back through an eventfd
 * the worker's epoll watches. */
#ifndef PGSCRIBE_RELOAD_H
#define PGSCRIBE_RELOAD_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

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
 *          with *cat NULL and the reason in @p errstr, or with *cat NULL and
 *          @p errstr empty when the load found nothing changed (a load
 *          function says so by returning NULL with its errstr left empty).
 */
int pgs_reload_take(pgs_reload_t *r, pgs_catalog_t **cat, char *errstr, size_t errstr_size);

/** Where pgs_reload_from_db connects and what it introspects. */
typedef struct {
    const char *conninfo;
    const char *schema;
    int connect_timeout_s;
    /* set by the owner before each start, read by the helper thread: the
     * fingerprint of the catalog in use (0: load whatever is there) */
    uint64_t known;
    PGconn *conn; /* the helper thread's, kept between loads */
} pgs_reload_db_t;

/** @brief The default load (blocking, on the helper thread): with @p arg, a
 *         pgs_reload_db_t, connects if it has no connection yet and runs
 *         pgs_catalog_load_changed against db->known (NULL with an empty
 *         errstr when the schema is unchanged). */
pgs_catalog_t *pgs_reload_from_db(void *arg, char *errstr, size_t errstr_size);
/** @brief Closes the helper's connection (after pgs_reload_free). */
void pgs_reload_db_close(pgs_reload_db_t *db);

#endif
