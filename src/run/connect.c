/* Apply pool connections opening without blocking the event loop:
 * PQconnectStartParams, then PQconnectPoll driven by the socket's readiness
 * in the worker's epoll, then the setup PREPAREs pipelined and confirmed
 * before the connection takes a transaction. Every connection carries TCP
 * keepalives, tcp_user_timeout and idle_in_transaction_session_timeout, so
 * a half-open backend cannot hold an in-doubt command's row locks for long. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "run/pgnotice.h"
#include "run/pool_internal.h"
#include "sql/auditsql.h"
#include "sql/txnaudit.h"

/* Sets the tenant and the transaction's adaptive timeouts in one statement
 * (is_local = true: all three end with the transaction), then takes the
 * clinic's audit chain head lock, under that lock_timeout: the first and
 * only head lock of the transaction, so no two transactions can wait for
 * each other's (docs/audit.md). */
static const char *const SQL_TXN_SETUP =
    "SELECT set_config('pgscribe.clinic_id', $1, true), set_config('statement_timeout', $2, true),"
    " set_config('lock_timeout', $3, true), audit.lock_head(),"
    " set_config('pgscribe.resume_floors', pgscribe.resume_floors_checked($4), true)";

/* Which database a new connection reached, asked before its first
 * transaction (migration 0013; an error leaves it unknown). */
static const char *const SQL_IDENTITY =
    "SELECT system_identifier::text || '/' || timeline::text FROM pgscribe.db_identity()";

static char *conninfo_value(PQconninfoOption *opts, const char *key)
{
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0)
            return o->val && o->val[0] ? o->val : NULL;
    }
    return NULL;
}

void pgs_connect_params_init(pgs_conn_params_t *p, const char *conninfo, const pgs_config_t *cfg)
{
    memset(p, 0, sizeof(*p));
    char *err = NULL;
    /* what the user's conninfo sets itself (NULL when it does not parse:
     * the connect then reports the error) */
    PQconninfoOption *user = PQconninfoParse(conninfo, &err);
    PQfreemem(err);
    int64_t timeout_ms = pgs_config_int(cfg, "pg.connect_timeout_ms");
    const char *user_timeout = conninfo_value(user, "connect_timeout");
    if (!user_timeout)
        user_timeout = getenv("PGCONNECT_TIMEOUT");
    if (user_timeout && atoi(user_timeout) > 0)
        timeout_ms = (int64_t)atoi(user_timeout) * 1000;
    p->connect_timeout_us = timeout_ms * 1000;
    int n = 0;
    /* libpq's connect_timeout is in whole seconds (the blocking first connect) */
    snprintf(p->num[0], sizeof(p->num[0]), "%lld", (long long)((timeout_ms + 999) / 1000));
    snprintf(p->num[1], sizeof(p->num[1]), "%lld",
             (long long)pgs_config_int(cfg, "pg.keepalives_idle_s"));
    snprintf(p->num[2], sizeof(p->num[2]), "%lld",
             (long long)pgs_config_int(cfg, "pg.keepalives_interval_s"));
    snprintf(p->num[3], sizeof(p->num[3]), "%lld",
             (long long)pgs_config_int(cfg, "pg.keepalives_count"));
    snprintf(p->num[4], sizeof(p->num[4]), "%lld",
             (long long)pgs_config_int(cfg, "pg.tcp_user_timeout_ms"));
    const char *defaults[][2] = {
        {"connect_timeout", p->num[0]},
        {"application_name", "pgscribe"},
        {"keepalives", "1"},
        {"keepalives_idle", p->num[1]},
        {"keepalives_interval", p->num[2]},
        {"keepalives_count", p->num[3]},
        {"tcp_user_timeout", p->num[4]},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        p->keys[n] = defaults[i][0];
        p->vals[n++] = defaults[i][1];
    }
    p->keys[n] = "dbname";
    p->vals[n++] = conninfo;
    /* session settings as options; an explicit options keyword replaces
     * PGOPTIONS and the user's own: both are kept after ours, so a setting
     * of theirs wins */
    int64_t idle_ms = pgs_config_int(cfg, "pg.idle_in_transaction_timeout_ms");
    int generic = pgs_config_bool(cfg, "pg.generic_plans");
    const char *theirs = conninfo_value(user, "options");
    if (!theirs)
        theirs = getenv("PGOPTIONS");
    if (idle_ms > 0 || generic) {
        size_t len = 128 + (theirs ? strlen(theirs) : 0);
        p->options = pgs_xalloc_malloc(len);
        int at = 0;
        p->options[0] = '\0';
        if (idle_ms > 0)
            at += snprintf(p->options + at, len - (size_t)at,
                           "-c idle_in_transaction_session_timeout=%lld ", (long long)idle_ms);
        /* the rows of a statement arrive as array parameters: a custom plan
         * gains nothing from their values, so each shape is planned once per
         * connection instead of at each of its first five executions */
        if (generic)
            at += snprintf(p->options + at, len - (size_t)at,
                           "-c plan_cache_mode=force_generic_plan ");
        snprintf(p->options + at, len - (size_t)at, "%s", theirs ? theirs : "");
        p->keys[n] = "options";
        p->vals[n++] = p->options;
    }
    p->keys[n] = NULL;
    p->vals[n] = NULL;
    PQconninfoFree(user);
}

void pgs_connect_params_free(pgs_conn_params_t *p)
{
    free(p->options);
    p->options = NULL;
}

static void connect_unwatch(pgs_conn_t *c)
{
    if (c->fd >= 0 && c->watching)
        c->pool->ops.watch(c->pool->opaque, c->fd, 0, c, PGS_POOL_WATCH_DEL);
    c->watching = 0;
}

/* Watches the socket for @p events. libpq may have moved to another socket
 * (the next host or address of the conninfo), perhaps under the same
 * number, whose closing dropped the old registration: so each call
 * modifies, and adds when epoll no longer knows the descriptor. */
static int connect_watch(pgs_conn_t *c, uint32_t events)
{
    int fd = PQsocket(c->pg);
    if (fd != c->fd) {
        connect_unwatch(c);
        c->fd = fd;
    }
    if (fd < 0)
        return -1;
    pgs_pool_t *pool = c->pool;
    int rc = -1;
    if (c->watching) {
        rc = pool->ops.watch(pool->opaque, fd, events, c, PGS_POOL_WATCH_MOD);
        if (rc != 0 && errno != ENOENT)
            goto failed;
    }
    if (rc != 0 && pool->ops.watch(pool->opaque, fd, events, c, PGS_POOL_WATCH_ADD) != 0)
        goto failed;
    c->watching = events;
    return 0;
failed:
    pgs_error("apply", "cannot watch connection socket: %s", strerror(errno));
    c->watching = 0;
    return -1;
}

/* Where a connection goes, for the log: host, port and dbname only, never
 * the password or other options. The attempt's own values (libpq's
 * defaults and environment applied) when there is one, else the conninfo's. */
static void conn_target(const pgs_conn_t *c, char *host, char *port, char *db, size_t size)
{
    snprintf(host, size, "-");
    snprintf(port, size, "-");
    snprintf(db, size, "-");
    if (c->pg) {
        const char *h = PQhost(c->pg), *p = PQport(c->pg), *d = PQdb(c->pg);
        snprintf(host, size, "%s", h && *h ? h : "-");
        snprintf(port, size, "%s", p && *p ? p : "-");
        snprintf(db, size, "%s", d && *d ? d : "-");
        return;
    }
    PQconninfoOption *opts = PQconninfoParse(c->pool->conninfo ? c->pool->conninfo : "", NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            snprintf(host, size, "%s", o->val);
        else if (strcmp(o->keyword, "port") == 0)
            snprintf(port, size, "%s", o->val);
        else if (strcmp(o->keyword, "dbname") == 0)
            snprintf(db, size, "%s", o->val);
    }
    PQconninfoFree(opts);
}

/* A connect attempt failed: the connection goes down and is retried after a
 * doubling backoff; failures feed the breaker (or fail its probe). The
 * database being unreachable is an error line, at most one per pool every
 * 10 s, with how many failures it stands for. */
static void connect_failed(pgs_conn_t *c, const char *why)
{
    pgs_pool_t *pool = c->pool;
    int64_t now = pgs_clock_now_us(), suppressed = 0;
    if (pgs_lograte_allow(&pool->down_log, now, 10000000, &suppressed)) {
        char host[256], port[256], db[256], id[16], sup[24];
        conn_target(c, host, port, db, sizeof(host));
        snprintf(id, sizeof(id), "%d", c->id);
        snprintf(sup, sizeof(sup), "%lld", (long long)suppressed);
        /* libpq's message names host/socket, never the password */
        const char *kv[] = {"pool", pool->name, "host",   host, "port",       port, "dbname", db,
                            "conn", id,         "reason", why,  "suppressed", sup,  NULL};
        pgs_log_kv(PGS_LOG_ERROR, "apply", kv, "postgresql unreachable");
    }
    connect_unwatch(c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->state = C_DOWN;
    c->want_write = 0;
    c->connect_failures++;
    int64_t backoff = 100000LL << (c->connect_failures < 6 ? c->connect_failures : 6);
    c->next_connect_us = now + backoff;
    if (c->probing) {
        c->probing = 0;
        pgs_breaker_probe_failed(&pool->breaker, now);
    } else if (pool->breaker.state != PGS_BREAKER_OPEN &&
               pgs_breaker_failure(&pool->breaker, now)) {
        pgs_warn("apply", "circuit breaker open: database unreachable; dispatch stopped, "
                          "partitions paused, probing");
    }
}

static void connect_failed_pq(pgs_conn_t *c, const char *what)
{
    char why[320];
    const char *msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
    snprintf(why, sizeof(why), "%s%s", what, msg);
    size_t len = strlen(why);
    while (len > 0 && (why[len - 1] == '\n' || why[len - 1] == ' '))
        why[--len] = '\0';
    connect_failed(c, why);
}

/* A connection to another database than the one of the last rewind check
 * (a promoted standby behind a multi-host conninfo, a restore behind the
 * same address) takes no transaction: the commands it would apply may
 * follow ones that database lost, so they wait for the rewind. 1 refused. */
static int identity_refused(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    if (!pool->expect_identity[0] || !c->setup_identity[0] ||
        strcmp(pool->expect_identity, c->setup_identity) == 0)
        return 0;
    if (strcmp(pool->changed_identity, c->setup_identity) != 0) {
        snprintf(pool->changed_identity, sizeof(pool->changed_identity), "%s", c->setup_identity);
        pgs_warn("apply",
                 "connection %d reached another database (identity %s, the rewind check saw "
                 "%s): no transaction on it until the worker has rewound",
                 c->id, c->setup_identity, pool->expect_identity);
    }
    pool->identity[0] = '\0'; /* no resume floor recorded from here */
    return 1;
}

/* The connection is ready to take transactions. */
static void connect_done(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    if (identity_refused(c)) {
        connect_failed(c, "another database than the one of the rewind check (promoted or "
                          "restored): waiting for the rewind");
        return;
    }
    int first = !c->ever_opened;
    c->state = C_IDLE;
    c->want_write = 0;
    c->connect_failures = 0;
    c->ever_opened = 1;
    if (c->prepared)
        memset(c->prepared, 0, c->prepared_cap);
    /* from here pool.c manages the watch: reading, writing while libpq has more */
    if (c->watching != EPOLLIN && connect_watch(c, EPOLLIN) != 0) {
        connect_failed(c, "socket not watchable");
        return;
    }
    if (c->probing) {
        c->probing = 0;
        pgs_breaker_probe_ok(&pool->breaker, pgs_clock_now_us());
        pgs_info("apply", "circuit breaker half-open: probe connected, resuming work");
    }
    pgs_info("apply", "connection %d %s", c->id, first ? "opened" : "re-established");
}

/* The second statement every connection prepares: the audit pool's
 * AuditEvent store, or the command pool's write audit, each transaction's
 * last statement (txnaudit.h). */
static const char *audit_statement_name(const pgs_pool_t *pool)
{
    return pool->audit ? PGS_AUDITSQL_NAME : PGS_TXNAUDIT_NAME;
}

static const char *audit_statement(const pgs_pool_t *pool)
{
    return pool->audit ? pgs_auditsql_statement() : pgs_txnaudit_statement();
}

int pgs_connect_open_blocking(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    c->pg = PQconnectdbParams(pool->params.keys, pool->params.vals, 1);
    pgs_pgnotice_attach(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        connect_failed_pq(c, "");
        return -1;
    }
    PGresult *r = PQprepare(c->pg, "pgs_txn_setup", SQL_TXN_SETUP, 4, NULL);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        r = PQprepare(c->pg, audit_statement_name(pool), audit_statement(pool), 0, NULL);
    }
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pgs_error("apply", "cannot prepare transaction setup: %s", PQresultErrorMessage(r));
    PQclear(r);
    c->setup_identity[0] = '\0';
    if (ok) {
        r = PQexec(c->pg, SQL_IDENTITY);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            snprintf(c->setup_identity, sizeof(c->setup_identity), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (!ok || PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        connect_failed_pq(c, "setup: ");
        return -1;
    }
    c->fd = -1;
    if (connect_watch(c, EPOLLIN) != 0) {
        connect_failed(c, "socket not watchable");
        return -1;
    }
    connect_done(c);
    return 0;
}

int pgs_connect_start(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    c->fd = -1;
    c->watching = 0;
    c->pg = PQconnectStartParams(pool->params.keys, pool->params.vals, 1);
    pgs_pgnotice_attach(c->pg);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed_pq(c, "");
        return -1;
    }
    c->state = C_CONNECTING;
    c->connect_deadline_us = pgs_clock_now_us() + pool->params.connect_timeout_us;
    /* libpq: after a successful start, act as if PGRES_POLLING_WRITING */
    if (connect_watch(c, EPOLLOUT) != 0) {
        connect_failed(c, "no socket to watch");
        return -1;
    }
    return 0;
}

/* Connected: nonblocking, pipeline mode, and the setup statements sent
 * with a sync; the connection is C_SETUP until the sync comes back. */
static void connect_setup(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1 ||
        !PQsendPrepare(c->pg, "pgs_txn_setup", SQL_TXN_SETUP, 4, NULL) ||
        !PQsendPrepare(c->pg, audit_statement_name(pool), audit_statement(pool), 0, NULL) ||
        !PQsendQueryParams(c->pg, SQL_IDENTITY, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg)) {
        connect_failed_pq(c, "setup: ");
        return;
    }
    c->state = C_SETUP;
    c->setup_failed = 0;
    c->setup_seen = 0;
    c->setup_identity[0] = '\0';
    /* the two PREPAREs and the identity query each answer a result and its
     * end; then the sync */
    c->setup_left = 2 * 3 + 1;
    int fl = PQflush(c->pg);
    if (fl < 0) {
        connect_failed_pq(c, "setup: ");
        return;
    }
    c->want_write = fl == 1;
    if (connect_watch(c, EPOLLIN | (c->want_write ? EPOLLOUT : 0u)) != 0)
        connect_failed(c, "socket not watchable");
}

static void connect_setup_read(pgs_conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        connect_failed_pq(c, "setup: ");
        return;
    }
    while (c->setup_left > 0 && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        c->setup_left--;
        if (!res)
            continue;
        ExecStatusType st = PQresultStatus(res);
        int prepare = st != PGRES_PIPELINE_SYNC && ++c->setup_seen <= 2;
        if (prepare && st == PGRES_FATAL_ERROR && !c->setup_failed) {
            pgs_error("apply", "cannot prepare transaction setup: %s", PQresultErrorMessage(res));
            c->setup_failed = 1;
        }
        if (!prepare && st == PGRES_TUPLES_OK && PQntuples(res) == 1)
            snprintf(c->setup_identity, sizeof(c->setup_identity), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC) {
            c->setup_left = 0;
            if (c->setup_failed)
                connect_failed(c, "setup statements refused");
            else
                connect_done(c);
            return;
        }
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        connect_failed_pq(c, "setup: ");
}

void pgs_connect_on_event(pgs_conn_t *c, uint32_t events)
{
    if (c->state == C_SETUP) {
        if (events & EPOLLOUT) {
            int fl = PQflush(c->pg);
            if (fl < 0) {
                connect_failed_pq(c, "setup: ");
                return;
            }
            c->want_write = fl == 1;
            if (connect_watch(c, EPOLLIN | (c->want_write ? EPOLLOUT : 0u)) != 0) {
                connect_failed(c, "socket not watchable");
                return;
            }
        }
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            connect_setup_read(c);
        return;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (connect_watch(c, EPOLLIN) != 0)
            connect_failed(c, "no socket to watch");
        break;
    case PGRES_POLLING_WRITING:
        if (connect_watch(c, EPOLLOUT) != 0)
            connect_failed(c, "no socket to watch");
        break;
    case PGRES_POLLING_OK:
        connect_setup(c);
        break;
    default:
        connect_failed_pq(c, "");
        break;
    }
}

void pgs_connect_check_timeout(pgs_conn_t *c, int64_t now)
{
    if ((c->state == C_CONNECTING || c->state == C_SETUP) && now >= c->connect_deadline_us)
        connect_failed(c, "timed out (pg.connect_timeout_ms or the conninfo's connect_timeout)");
}
