/* Apply pool: non-blocking libpq connections in pipeline mode, one
 * transaction at a time each (txn.c sends it, settle.c settles it). Here:
 * opening and losing connections, their sockets' readiness, the circuit
 * breaker, the adaptive in-flight limit and dispatch from the lanes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/clock.h"
#include "common/log.h"
#include "run/pool_internal.h"

/* The adaptive in-flight limit starts at its floor (or at max_in_flight when
 * lower), with a slow start, and is re-weighed every window; see
 * concurrency.h. */
#define APPLY_INITIAL_IN_FLIGHT     2
#define APPLY_CONCURRENCY_WINDOW_US 1000000
#define APPLY_MAX_BATCH             1000
#define APPLY_CATALOG_POLL_US       200000 /* a work waiting for its catalog asks again */

const char *pgs_pool_work_clinic(const pgs_work_t *wk)
{
    return wk->cmd ? wk->cmd->clinic_id : wk->audit->clinic_id;
}

const char *pgs_pool_work_op(const pgs_work_t *wk)
{
    return wk && wk->cmd ? pgs_command_op_name(wk->cmd->op) : "INSERT";
}

const char *pgs_pool_work_entity(const pgs_work_t *wk)
{
    return wk ? (wk->cmd ? wk->cmd->entity : "audit_events") : "-";
}

/* ---- connections ------------------------------------------------------ */

static void conn_watch_update(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    pool->ops.watch(pool->opaque, c->fd, EPOLLIN | (c->want_write ? EPOLLOUT : 0u), c,
                    PGS_POOL_WATCH_MOD);
}

static char *dup_or_empty(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

pgs_pool_t *pgs_pool_new(const pgs_pool_settings_t *set, const pgs_pool_ops_t *ops, void *opaque,
                         char *errstr, size_t errstr_size)
{
    pgs_pool_t *pool = calloc(1, sizeof(*pool));
    if (!pool)
        abort();
    pool->ops = *ops;
    pool->opaque = opaque;
    pool->name = dup_or_empty(set->name);
    pool->topic = dup_or_empty(set->topic);
    pool->conninfo = dup_or_empty(set->conninfo);
    pool->audit = set->audit;
    pool->max_batch = set->max_batch < APPLY_MAX_BATCH ? set->max_batch : APPLY_MAX_BATCH;
    pool->lanes = set->lanes;
    pool->cfg = set->cfg;
    pool->profile = set->profile;
    pgs_latency_init(&pool->audit_latency);
    int size = set->size;
    pool->nconns = size;
    pool->conns = calloc((size_t)size, sizeof(*pool->conns));
    pool->rng = (uint64_t)pgs_clock_now_us() | 1;
    pool->stmts =
        pgs_statements_new(set->schema, (size_t)pgs_config_int(set->cfg, "apply.max_statements"));
    pgs_breaker_init(&pool->breaker, (int)pgs_config_int(set->cfg, "breaker.failure_threshold"),
                     250000, pgs_config_int(set->cfg, "breaker.probe_interval_ms") * 1000);
    pgs_concurrency_init(&pool->conc, set->adaptive, APPLY_INITIAL_IN_FLIGHT, size,
                         APPLY_CONCURRENCY_WINDOW_US, pgs_clock_now_us());
    pgs_connect_params_init(&pool->params, pool->conninfo, set->cfg);
    int max_batch = pool->max_batch;
    int opened = 0, opening = 0;
    for (int i = 0; i < size; i++) {
        pgs_conn_t *c = &pool->conns[i];
        c->pool = pool;
        c->id = i;
        c->fd = -1;
        c->batch = calloc((size_t)max_batch, sizeof(*c->batch));
        c->fresh = calloc((size_t)max_batch, sizeof(*c->fresh));
        c->group_of = calloc((size_t)max_batch, sizeof(int));
        c->group_stmt = calloc((size_t)max_batch, sizeof(int));
        c->group_size = calloc((size_t)max_batch, sizeof(int));
        c->group_fresh = calloc((size_t)max_batch, sizeof(int));
        c->exp_cap = 4 * max_batch + 8;
        c->exp = calloc((size_t)c->exp_cap, sizeof(*c->exp));
        /* with an adaptive limit, connections open as the limit needs them;
         * the first opens blocking, so that an unreachable database fails
         * the start clearly, the others in the event loop */
        if (i >= pool->conc.limit)
            c->state = C_SPARE;
        else if (i == 0)
            opened += pgs_connect_open_blocking(c) == 0;
        else if (opened > 0)
            opening += pgs_connect_start(c) == 0;
    }
    if (opened == 0) {
        snprintf(errstr, errstr_size, "no database connection could be opened");
        pgs_pool_free(pool);
        return NULL;
    }
    if (set->adaptive)
        pgs_info("apply",
                 "%s pool ready: %d open and %d opening of %d connections, pipeline mode, "
                 "in-flight limit adaptive (up to %d connections, opened as the limit needs them)",
                 pool->name, opened, opening, pool->conc.limit, size);
    else
        pgs_info("apply", "%s pool ready: %d open and %d opening of %d connections, pipeline mode",
                 pool->name, opened, opening, size);
    return pool;
}

void pgs_pool_free(pgs_pool_t *pool)
{
    if (!pool)
        return;
    if (!pool->audit)
        pgs_info("apply",
                 "%s pool: %zu statements held at stop, %llu evicted (apply.max_statements %lld)",
                 pool->name, pgs_statements_count(pool->stmts),
                 (unsigned long long)pgs_statements_evicted(pool->stmts),
                 (long long)pgs_config_int(pool->cfg, "apply.max_statements"));
    for (int i = 0; i < pool->nconns; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->pg)
            PQfinish(c->pg);
        free(c->batch);
        free(c->fresh);
        free(c->group_of);
        free(c->group_stmt);
        free(c->group_size);
        free(c->group_fresh);
        free(c->exp);
        free(c->prepared);
        free(c->prepared_serial);
    }
    pgs_statements_free(pool->stmts);
    pgs_connect_params_free(&pool->params);
    free(pool->waiting);
    free(pool->conns);
    free(pool->conninfo);
    free(pool->topic);
    free(pool->name);
    free(pool);
}

int pgs_pool_size(const pgs_pool_t *pool)
{
    return pool->nconns;
}

size_t pgs_pool_waiting(const pgs_pool_t *pool)
{
    return pool->nwaiting;
}

size_t pgs_pool_held(const pgs_pool_t *pool, int (*pred)(const pgs_work_t *wk), int catalog_only)
{
    size_t n = 0;
    for (size_t i = 0; pool && i < pool->nwaiting; i++) {
        const pgs_work_t *wk = pool->waiting[i];
        if (!pred(wk) || (catalog_only && !wk->catalog_wait_until_us))
            continue;
        /* it, and its lane's works queued behind it, which wait with it */
        for (const pgs_lane_item_t *it = &wk->lane; it; it = it->lane_next)
            n++;
    }
    return n;
}

size_t pgs_pool_unhold(pgs_pool_t *pool, int (*pred)(const pgs_work_t *wk))
{
    size_t keep = 0, n = 0;
    for (size_t i = 0; pool && i < pool->nwaiting; i++) {
        pgs_work_t *wk = pool->waiting[i];
        if (pred(wk)) {
            pgs_lanes_retry(pool->lanes, &wk->lane);
            n++;
        } else {
            pool->waiting[keep++] = wk;
        }
    }
    if (pool)
        pool->nwaiting = keep;
    return n;
}

void pgs_pool_conn_flush(pgs_conn_t *c)
{
    int r = PQflush(c->pg);
    int want = r == 1;
    if (r < 0) {
        pgs_pool_conn_down(c, "flush failed");
        return;
    }
    if (want != c->want_write) {
        c->want_write = want;
        conn_watch_update(c);
    }
}

/* The connection is gone: its transaction may or may not have committed.
 * The batch goes back to its lanes; the idempotency record makes the
 * retry of an already committed command a counted duplicate. */
void pgs_pool_conn_down(pgs_conn_t *c, const char *why)
{
    pgs_pool_t *pool = c->pool;
    /* COMMIT answered OK before the connection went: the transaction is in
     * the database, whatever came (or did not come) after it */
    int committed = c->nbatch > 0 && c->commit_ok && !c->failed && !c->in_rollback;
    pgs_warn("apply", "connection %d down (%s); %d command(s) %s", c->id, why, c->nbatch,
             committed ? "committed before it went" : "will be retried");
    if (c->fd >= 0)
        pool->ops.watch(pool->opaque, c->fd, 0, c, PGS_POOL_WATCH_DEL);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->watching = 0;
    c->state = C_DOWN;
    c->want_write = 0;
    c->next_connect_us = pgs_clock_now_us() + 200000;
    /* otherwise the batch may or may not have committed: it goes again, and
     * the idempotency record makes an already committed command a no-op; a
     * lost connection spends no attempt */
    if (committed) {
        pgs_settle_succeeded(c);
    } else if (c->nbatch > 0) {
        for (int i = 0; i < c->nbatch; i++)
            c->batch[i]->in_doubt = !c->failed;
        pgs_settle_requeue(c, -1);
    }
    if (pgs_breaker_failure(&pool->breaker, pgs_clock_now_us()))
        pgs_warn("apply", "circuit breaker open: connections lost; dispatch stopped, partitions "
                          "paused, probing");
}

void pgs_pool_on_event(pgs_pool_t *pool, void *tag, uint32_t events)
{
    (void)pool;
    pgs_conn_t *c = tag;
    if (!c->pg)
        return;
    if (c->state == C_CONNECTING || c->state == C_SETUP) {
        pgs_connect_on_event(c, events);
        return;
    }
    if (events & EPOLLOUT)
        pgs_pool_conn_flush(c);
    if (c->pg && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        pgs_settle_read(c);
}

/* ---- dispatch --------------------------------------------------------- */

/* Works that named a column their catalog did not know are validated again
 * against the newest one before they are sent: valid, they go; still
 * unknown, they wait a little longer with their lanes blocked (so no later
 * command of their key overtakes them); out of grace, they have been
 * dead-lettered. @returns the works left to send, compacted. */
static size_t hold_for_catalog(pgs_pool_t *pool, pgs_work_t **works, size_t n)
{
    size_t keep = 0;
    for (size_t k = 0; k < n; k++) {
        pgs_work_t *wk = works[k];
        int rc = wk->catalog_wait_until_us && pool->ops.revalidate
                     ? pool->ops.revalidate(pool->opaque, wk)
                     : 0;
        if (rc == 0)
            works[keep++] = wk;
        else if (rc == 1)
            pgs_settle_hold(pool, wk, pgs_clock_now_us() + APPLY_CATALOG_POLL_US);
    }
    return keep;
}

void pgs_pool_dispatch(pgs_pool_t *pool)
{
    if (pool->nwaiting > 0)
        pgs_settle_retry_due(pool, pgs_clock_now_us());
    if (!pgs_breaker_allows_dispatch(&pool->breaker))
        return;
    pgs_work_t *works[APPLY_MAX_BATCH];
    pgs_lane_item_t *items[APPLY_MAX_BATCH];
    pgs_lanes_t *lanes = pool->lanes;
    size_t max = (size_t)pool->max_batch;
    if (pgs_lanes_ready(lanes) == 0)
        return;
    int busy = pgs_pool_busy(pool);
    for (int i = 0; i < pool->nconns && pgs_lanes_ready(lanes) > 0; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_IDLE)
            continue;
        if (busy >= pool->conc.limit)
            break;
        size_t n = pgs_lanes_take(lanes, items, max);
        if (n == 0)
            break;
        /* a work marked alone goes in a transaction of its own: the others
         * taken with it go back to the front of their lanes */
        size_t keep = 0;
        for (size_t k = 0; k < n; k++) {
            pgs_work_t *wk = (pgs_work_t *)items[k];
            if (keep > 0 && (wk->alone || works[0]->alone))
                pgs_lanes_retry(lanes, &wk->lane);
            else
                works[keep++] = wk;
        }
        n = hold_for_catalog(pool, works, keep);
        if (n == 0)
            continue;
        /* One clinic per transaction: the lanes give one clinic's commands
         * per take, and should a take ever hold two, the others go back to
         * their lanes, loudly, and run in a transaction of their own clinic. */
        int one = pgs_txn_one_clinic(works, (int)n);
        if (one != (int)n) {
            pgs_error("apply",
                      "tenant wall: a batch of %zu command(s) held clinics other than "
                      "its first's; %zu sent back to their lanes",
                      n, n - (size_t)one);
            for (size_t k = (size_t)one; k < n; k++) {
                if (strcmp(pgs_pool_work_clinic(works[k]), pgs_pool_work_clinic(works[0])) != 0)
                    pgs_lanes_retry(lanes, &works[k]->lane);
                else
                    works[one++] = works[k];
            }
            n = (size_t)one;
        }
        if (pgs_txn_start(c, works, (int)n) != 0) {
            c->nbatch = (int)n;
            pgs_pool_conn_down(c, "send failed");
        } else {
            busy++;
        }
    }
    pgs_concurrency_polled(&pool->conc, pgs_lanes_ready(lanes) > 0);
}

int pgs_pool_busy(const pgs_pool_t *pool)
{
    int busy = 0;
    for (int i = 0; i < pool->nconns; i++)
        busy += pool->conns[i].state == C_BUSY;
    return busy;
}

int pgs_pool_in_flight_limit(const pgs_pool_t *pool)
{
    return pool->conc.limit;
}

/* ---- breaker and upkeep ----------------------------------------------- */

/* While the breaker is open, one connection at a time probes the database,
 * with doubling delays; a probe that connects (connect.c, in the event loop)
 * half-opens the breaker and the other connections follow. */
static void breaker_probe(pgs_pool_t *pool, int64_t now)
{
    for (int i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].probing)
            return; /* the probe under way answers first */
    }
    if (!pgs_breaker_probe_due(&pool->breaker, now))
        return;
    for (int i = 0; i < pool->nconns; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_DOWN)
            continue;
        c->probing = 1;
        pgs_connect_start(c); /* a failure to start fails the probe there */
        return;
    }
    for (int i = 0; i < pool->nconns; i++) {
        if (pool->conns[i].state == C_CONNECTING || pool->conns[i].state == C_SETUP)
            return; /* connects under way: they answer as probes would */
    }
    /* every connection is still up (errors came from the server): probing
     * means trying work again */
    pgs_breaker_probe_ok(&pool->breaker, now);
}

void pgs_pool_reconfigure(pgs_pool_t *pool)
{
    /* takes effect on the next failure or probe */
    pool->breaker.threshold = (int)pgs_config_int(pool->cfg, "breaker.failure_threshold");
    pool->breaker.probe_max_us = pgs_config_int(pool->cfg, "breaker.probe_interval_ms") * 1000;
}

const char *pgs_pool_breaker_state(const pgs_pool_t *pool)
{
    return pgs_breaker_state_name(pool->breaker.state);
}

void pgs_pool_set_identity(pgs_pool_t *pool, const char *identity)
{
    snprintf(pool->identity, sizeof(pool->identity), "%s", identity ? identity : "");
    if (identity && identity[0]) {
        snprintf(pool->expect_identity, sizeof(pool->expect_identity), "%s", identity);
        pool->changed_identity[0] = '\0';
    }
}

void pgs_pool_hold_identity(pgs_pool_t *pool)
{
    pool->identity[0] = '\0';
    if (!pool->changed_identity[0])
        snprintf(pool->changed_identity, sizeof(pool->changed_identity), "%s", "?");
}

const char *pgs_pool_identity_changed(const pgs_pool_t *pool)
{
    return pool && pool->changed_identity[0] ? pool->changed_identity : NULL;
}

int pgs_pool_breaker_open(const pgs_pool_t *pool)
{
    return pool->breaker.state == PGS_BREAKER_OPEN;
}

/* The limit grew past the connections in use: spares become C_DOWN, which
 * the reconnect pass below opens (a few per tick). Connections are never
 * closed when the limit falls; they stay for the next climb. */
static void pool_wake_spares(pgs_pool_t *pool)
{
    int managed = 0;
    for (int i = 0; i < pool->nconns; i++)
        managed += pool->conns[i].state != C_SPARE;
    for (int i = 0; i < pool->nconns && managed < pool->conc.limit; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state == C_SPARE) {
            c->state = C_DOWN;
            c->next_connect_us = 0;
            managed++;
        }
    }
}

void pgs_pool_tick(pgs_pool_t *pool)
{
    int64_t now = pgs_clock_now_us();
    for (int i = 0; i < pool->nconns; i++)
        pgs_connect_check_timeout(&pool->conns[i], now);
    int before = pool->conc.limit;
    if (pgs_concurrency_tick(&pool->conc, now)) {
        pgs_debug("apply", "%s in-flight limit %d -> %d (%.0f commands/s)", pool->name, before,
                  pool->conc.limit, pool->conc.last_rate);
        pool_wake_spares(pool);
    }
    if (pool->breaker.state == PGS_BREAKER_OPEN) {
        breaker_probe(pool, now);
        return;
    }
    int attempts = 0;
    for (int i = 0; i < pool->nconns && attempts < 4; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_DOWN || now < c->next_connect_us)
            continue;
        attempts++;
        if (pgs_connect_start(c) != 0)
            break; /* the database is still away: try the others later */
    }
}

int pgs_pool_connected(const pgs_pool_t *pool)
{
    int n = 0;
    for (int i = 0; pool && i < pool->nconns; i++)
        n += pool->conns[i].state == C_IDLE || pool->conns[i].state == C_BUSY;
    return n;
}
