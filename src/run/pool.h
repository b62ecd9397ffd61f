/* Apply pool: the public face of a stream's database connections and the
 * transactions they run. The pool reports every outcome through callbacks
 * (pgs_pool_ops_t) and never reaches into the worker. */
#ifndef PGSCRIBE_POOL_H
#define PGSCRIBE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "common/config.h"
#include "policy/error.h"
#include "run/lanes.h"

typedef struct pgs_pool_s pgs_pool_t;
typedef struct pgs_work_s pgs_work_t;

/** What a watch callback is asked to do with a connection's socket. */
typedef enum { PGS_POOL_WATCH_ADD = 0, PGS_POOL_WATCH_MOD, PGS_POOL_WATCH_DEL } pgs_pool_watch_t;

/**
 * The pool's outcomes, reported to its owner. Every work the pool takes from
 * its lanes ends in exactly one of: back in its lane (the pool does that
 * itself), in retry backoff (the pool gives it back when the backoff is
 * over), applied(), or dead_letter().
 *
 * @locality the thread that drives the pool (the worker's main thread):
 *           every callback is called from within a pgs_pool_* call.
 */
typedef struct {
    /** @brief Registers, changes or removes the readiness the pool waits for
     *         on @p fd (EPOLLIN/EPOLLOUT bits); @p tag goes back to
     *         pgs_pool_on_event(). @returns 0, or -1 with errno set. */
    int (*watch)(void *opaque, int fd, uint32_t events, void *tag, pgs_pool_watch_t op);
    /** @brief A transaction of @p clinic_id committed @p works[0..n): @p fresh
     *         of them newly applied, the rest duplicates; @p took_us from
     *         BEGIN to COMMIT's answer. The callee completes (frees) each. */
    void (*applied)(void *opaque, pgs_work_t **works, int n, int fresh, int64_t took_us,
                    const char *clinic_id);
    /** @brief @p work failed transiently with SQLSTATE @p code and waits
     *         out a backoff of @p delay_us (its attempt is already counted in
     *         work->attempts). May be NULL. */
    void (*retried)(void *opaque, pgs_work_t *work, const char *code, int64_t delay_us);
    /** @brief A transaction of @p works[0..n) ended @p took_us after BEGIN
     *         was sent: committed when @p code is NULL (each work's `fresh`
     *         set), else failed with SQLSTATE @p code and the PHI-free @p msg.
     *         Called before the outcome callbacks. May be NULL. */
    void (*settled)(void *opaque, pgs_work_t *const *works, int n, int64_t took_us,
                    const char *code, const char *msg);
    /** @brief @p work cannot be applied: the callee dead-letters it. @p code
     *         is a SQLSTATE (or NULL for pgs_error_code(err)); @p msg is PHI-free. */
    void (*dead_letter)(void *opaque, pgs_work_t *work, pgs_err_t err, const char *code,
                        const char *msg);
    /** @brief @p work waits for a catalog that knows what it names (its
     *         catalog_wait_until_us is set): the callee validates it again
     *         against the newest catalog.
     *  @returns 0: valid now, send it; 1: still waiting (the pool holds it,
     *           its lane blocked, and asks again later); -1: given up, the
     *           callee has dead-lettered it. May be NULL (nothing waits). */
    int (*revalidate)(void *opaque, pgs_work_t *work);
} pgs_pool_ops_t;

/** What a pool serves and how. Strings are copied. */
typedef struct {
    const char *name;     /* "commands" or "audit", for logs */
    int audit;            /* audit events (one INSERT per batch), not write commands */
    int adaptive;         /* adapt the in-flight limit (concurrency.h) */
    const char *topic;    /* recorded with each row's source position */
    const char *conninfo; /* libpq connection string */
    const char *schema;   /* target schema of the generated statements */
    int size;             /* connections, and the most transactions in flight */
    int max_batch;        /* most works in one transaction (at most 1000) */
    pgs_lanes_t *lanes;   /* ready works come from here and go back here */
    /* apply.*, retry.*, breaker.* and log.slow_statement_ms; read while
     * running, so reloaded values apply (the breaker's on reconfigure) */
    const pgs_config_t *cfg;
    /* statement profile the pool counts its statements in (may be NULL) */
    struct pgs_profile_s *profile;
} pgs_pool_settings_t;

/** @brief Opens the pool's first connections. @returns the pool, or NULL
 *         with @p errstr filled when none could be opened. */
pgs_pool_t *pgs_pool_new(const pgs_pool_settings_t *set, const pgs_pool_ops_t *ops, void *opaque,
                         char *errstr, size_t errstr_size);
void pgs_pool_free(pgs_pool_t *pool);
/** @brief Drops the pool's statements of @p cat's entities (a retired
 *         catalog no work points into any more). @returns how many. */
size_t pgs_pool_drop_catalog(pgs_pool_t *pool, const pgs_catalog_t *cat);
/** @brief Starts transactions on idle connections for ready lane items. */
void pgs_pool_dispatch(pgs_pool_t *pool);
/** @brief Handles I/O readiness of the connection registered with @p tag
 *         (@p pool may be NULL: the tag knows its pool). */
void pgs_pool_on_event(pgs_pool_t *pool, void *tag, uint32_t events);
/** @brief Periodic upkeep: reconnects broken connections, probes for the
 *         breaker, re-weighs the in-flight limit. */
void pgs_pool_tick(pgs_pool_t *pool);
/** @brief Applies reloaded settings (the breaker's) after SIGHUP. */
void pgs_pool_reconfigure(pgs_pool_t *pool);
/** @brief "closed", "open" or "half-open". */
const char *pgs_pool_breaker_state(const pgs_pool_t *pool);
int pgs_pool_breaker_open(const pgs_pool_t *pool);
/** @brief The database identity ("SYSID/TIMELINE") the worker last checked,
 *         "" or NULL when unknown: the resume floors of the pool's
 *         transactions are recorded only on that database (floors.h). */
void pgs_pool_set_identity(pgs_pool_t *pool, const char *identity);
/**
 * @brief Another database than the one of the last rewind check: no resume
 *        floor is recorded any more and no connection of the pool is put to
 *        use until pgs_pool_set_identity names a checked one (the worker
 *        starts again in-process, and its new assignment rewinds).
 */
void pgs_pool_hold_identity(pgs_pool_t *pool);
/** @returns the identity ("SYSID/TIMELINE", or "?") of another database a
 *           connection of @p pool found, or NULL: every new connection is
 *           checked before its first transaction, and one to a database
 *           that is not the checked one (a promoted standby, a restore) is
 *           closed unused, so nothing is applied out of order there. */
const char *pgs_pool_identity_changed(const pgs_pool_t *pool);
/** @returns how many of the pool's transactions are open now. */
int pgs_pool_busy(const pgs_pool_t *pool);
/** @returns how many transactions the pool may have in flight now. */
int pgs_pool_in_flight_limit(const pgs_pool_t *pool);
int pgs_pool_size(const pgs_pool_t *pool);
/** @returns how many of the pool's connections are open (idle or busy). */
int pgs_pool_connected(const pgs_pool_t *pool);
/** @returns how many works wait out a retry backoff. */
size_t pgs_pool_waiting(const pgs_pool_t *pool);
/** @returns how many works the pool holds back (a retry backoff, or with
 *           @p catalog_only only a wait for the catalog) for which @p pred is
 *           1, with the works queued behind them in their lanes. */
size_t pgs_pool_held(const pgs_pool_t *pool, int (*pred)(const pgs_work_t *wk), int catalog_only);
/** @brief The works held back for which @p pred is 1 go back to their lanes,
 *         queued and not in flight, so a lane purge can drop them (a revoked
 *         partition's next owner consumes them again). @returns how many. */
size_t pgs_pool_unhold(pgs_pool_t *pool, int (*pred)(const pgs_work_t *wk));

#endif
