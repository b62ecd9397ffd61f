/* Apply: a pool of non-blocking libpq connections in pipeline mode; each
 * runs one transaction at a time carrying up to apply.max_batch commands of
 * one clinic, sent in one round trip:
 *
 *   BEGIN; set_config('pgscribe.clinic_id', clinic, true);
 *   [PREPARE shape]; EXECUTE shape(cmd 1); ... ; COMMIT; Sync
 *
 * Commands of the transaction that share a batch shape go in ONE multi-row
 * statement over arrays (sqlbatch.c); a lone command uses its single-command
 * statement (sqlgen.c). Either records the command id, writes the audit row
 * and applies the write together. When a statement fails, the transaction is
 * rolled back: a single command at fault alone gets the error and the others
 * go back to their lanes; the commands of a failed multi-row statement are
 * sent again one statement each, to find the one at fault. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "sql/auditsql.h"
#include "policy/concurrency.h"
#include "common/log.h"
#include "policy/resilience.h"
#include "sql/statements.h"
#include "run/worker.h"

/* The adaptive in-flight limit starts here (or at max_in_flight when lower)
 * and is re-weighed every window; see concurrency.h. */
#define APPLY_INITIAL_IN_FLIGHT     8
#define APPLY_CONCURRENCY_WINDOW_US 1000000

typedef enum {
    R_BEGIN,
    R_CLINIC,
    R_PREPARE,
    R_CMD,   /* single-command statement of batch index idx */
    R_MULTI, /* multi-row statement of group idx */
    R_COMMIT,
    R_ROLLBACK,
    R_SYNC
} rkind_t;

typedef struct {
    rkind_t kind;
    int idx;   /* batch index (R_CMD) or group (R_MULTI); for R_PREPARE, of what follows */
    int multi; /* R_PREPARE: it precedes an R_MULTI */
    int stmt;  /* R_PREPARE: statement id */
} rexp_t;

/* C_SPARE: never opened, because the adaptive in-flight limit has not
 * needed it yet; it becomes C_DOWN (to be opened) when the limit grows. */
typedef enum { C_DOWN = 0, C_IDLE, C_BUSY, C_SPARE } cstate_t;

/* A PREPARE sent in a pipeline that then aborts never happens, so a shape
 * counts as prepared only once the server has confirmed it. */
enum { PREP_NONE = 0, PREP_SENT, PREP_DONE };

typedef struct pgs_conn_s {
    pgs_pool_t *pool;
    int id;
    PGconn *pg;
    int fd;
    cstate_t state;
    unsigned char *prepared; /* by shape id: PREP_NONE, PREP_SENT, PREP_DONE */
    size_t prepared_cap;
    pgs_work_t **batch;
    int nbatch;
    int *fresh;       /* per batch index: 1 applied, 0 duplicate (single statements) */
    int *group_of;    /* per batch index: multi-row group, or -1 */
    int *group_stmt;  /* per group: statement id */
    int *group_size;  /* per group: commands */
    int *group_fresh; /* per group: commands applied */
    int ngroups;
    int fail_group; /* multi-row group at fault, or -1 */
    rexp_t *exp;
    int nexp, exp_pos, exp_cap;
    int failed;      /* an error was seen before the sync */
    int fail_cmd;    /* batch index at fault, or -1 */
    int fail_outage; /* the error says the database is going away */
    int commit_ok;   /* COMMIT answered OK: the transaction is durable */
    int fail_commit; /* COMMIT itself failed with a permanent error */
    pgs_err_t fail_err;
    char fail_code[8];
    char fail_msg[256];
    int in_rollback;
    int want_write;
    int64_t started_us;
    int64_t next_connect_us;
    int connect_failures;
    int ever_opened;
} pgs_conn_t;

struct pgs_pool_s {
    pgs_worker_t *w;
    pgs_stream_t *stream; /* whose lanes it serves: commands or audit events */
    pgs_latency_t audit_latency;
    char *conninfo;
    pgs_conn_t *conns;
    int nconns;
    pgs_stmts_t *stmts;
    int64_t last_down_log_us;
    pgs_breaker_t breaker;
    pgs_concurrency_t conc; /* how many of the connections may be busy */
    uint64_t rng;
    pgs_work_t **waiting; /* works in retry backoff; their lanes stay blocked */
    size_t nwaiting, waiting_cap;
};

/* Sets the tenant and the transaction's adaptive timeouts in one statement;
 * is_local = true: all three end with the transaction. */
static const char *const SQL_TXN_SETUP =
    "SELECT set_config('pgscribe.clinic_id', $1, true), set_config('statement_timeout', $2, true),"
    " set_config('lock_timeout', $3, true)";

static void conn_down(pgs_conn_t *c, const char *why);

static const char *work_clinic(const pgs_work_t *wk)
{
    return wk->cmd ? wk->cmd->clinic_id : wk->audit->clinic_id;
}

/* What a log line or error says a work is: "UPDATE on patients", or an audit
 * event. Names only, never values. */
static const char *work_op(const pgs_work_t *wk)
{
    return wk && wk->cmd ? pgs_command_op_name(wk->cmd->op) : "INSERT";
}

static const char *work_entity(const pgs_work_t *wk)
{
    return wk ? (wk->cmd ? wk->cmd->entity : "audit_events") : "-";
}

/* ---- statements -------------------------------------------------------- */

/* Resolves (once per work) its single-command statement and, when it can go
 * in a multi-row statement, that one too. */
static void work_statements(pgs_pool_t *pool, pgs_work_t *wk)
{
    if (wk->stmt_known)
        return;
    wk->stmt = pgs_statements_single(pool->stmts, &wk->shape);
    pgs_bshape_t bs;
    wk->bstmt = pgs_sqlbatch_shape_of(wk->ent, wk->cmd, &wk->shape, &bs) == 0
                    ? pgs_statements_batch(pool->stmts, &bs)
                    : -1;
    wk->stmt_known = 1;
}

static int conn_prep_state(pgs_conn_t *c, int sid)
{
    return (size_t)sid < c->prepared_cap ? c->prepared[sid] : PREP_NONE;
}

/* After a failed pipeline: every PREPARE not confirmed did not happen. */
static void conn_forget_unconfirmed(pgs_conn_t *c)
{
    for (size_t i = 0; i < c->prepared_cap; i++) {
        if (c->prepared[i] == PREP_SENT)
            c->prepared[i] = PREP_NONE;
    }
}

static void conn_set_prepared(pgs_conn_t *c, int sid, int on)
{
    if ((size_t)sid >= c->prepared_cap) {
        size_t cap = c->prepared_cap ? c->prepared_cap : 64;
        while (cap <= (size_t)sid)
            cap *= 2;
        c->prepared = realloc(c->prepared, cap);
        if (!c->prepared)
            abort();
        memset(c->prepared + c->prepared_cap, 0, cap - c->prepared_cap);
        c->prepared_cap = cap;
    }
    c->prepared[sid] = (unsigned char)on;
}

/* ---- connections ------------------------------------------------------ */

static void epoll_update(pgs_conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->want_write ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(c->pool->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_open(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    char err[256];
    /* the conninfo's own settings win (expand_dbname); these are defaults */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "pgscribe", pool->conninfo, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host/socket, never the password */
        snprintf(err, sizeof(err), "%s", PQerrorMessage(pg));
        PQfinish(pg);
        c->connect_failures++;
        int64_t backoff = 100000LL << (c->connect_failures < 6 ? c->connect_failures : 6);
        c->next_connect_us = pgs_clock_now_us() + backoff;
        int64_t now = pgs_clock_now_us();
        if (pool->breaker.state != PGS_BREAKER_OPEN && pgs_breaker_failure(&pool->breaker, now))
            pgs_warn("apply", "circuit breaker open: database unreachable; dispatch stopped, "
                              "partitions paused, probing");
        if (now - pool->last_down_log_us > 5000000) {
            pool->last_down_log_us = now;
            pgs_warn("apply", "database connection failed: %s", err);
        }
        return -1;
    }
    PGresult *r = PQprepare(pg, "pgs_txn_setup", SQL_TXN_SETUP, 3, NULL);
    if (PQresultStatus(r) == PGRES_COMMAND_OK && pool->stream->kind == PGS_STREAM_AUDIT) {
        PQclear(r);
        r = PQprepare(pg, PGS_AUDITSQL_NAME, pgs_auditsql_statement(), 0, NULL);
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgs_error("apply", "cannot prepare transaction setup: %s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(pg);
        c->next_connect_us = pgs_clock_now_us() + 1000000;
        return -1;
    }
    PQclear(r);
    if (PQsetnonblocking(pg, 1) != 0 || PQenterPipelineMode(pg) != 1) {
        pgs_error("apply", "cannot enter pipeline mode: %s", PQerrorMessage(pg));
        PQfinish(pg);
        c->next_connect_us = pgs_clock_now_us() + 1000000;
        return -1;
    }
    c->pg = pg;
    c->fd = PQsocket(pg);
    c->state = C_IDLE;
    c->want_write = 0;
    c->connect_failures = 0;
    c->ever_opened = 1;
    if (c->prepared)
        memset(c->prepared, 0, c->prepared_cap);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(pool->w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        pgs_error("apply", "epoll_ctl: %s", strerror(errno));
        PQfinish(pg);
        c->pg = NULL;
        c->state = C_DOWN;
        return -1;
    }
    return 0;
}

pgs_pool_t *pgs_pool_new(pgs_worker_t *w, pgs_stream_t *stream, const char *conninfo, int size,
                         char *errstr, size_t errstr_size)
{
    pgs_pool_t *pool = calloc(1, sizeof(*pool));
    pool->w = w;
    pool->stream = stream;
    pgs_latency_init(&pool->audit_latency);
    pool->conninfo = strdup(conninfo);
    pool->nconns = size;
    pool->conns = calloc((size_t)size, sizeof(*pool->conns));
    pool->rng = (uint64_t)pgs_clock_now_us() | 1;
    pool->stmts = pgs_statements_new(pgs_catalog_schema(w->catalog));
    pgs_breaker_init(&pool->breaker, (int)pgs_config_int(w->cfg, "breaker.failure_threshold"),
                     250000, pgs_config_int(w->cfg, "breaker.probe_interval_ms") * 1000);
    /* only write commands adapt: the audit pool is small and append-only */
    int adaptive =
        stream->kind == PGS_STREAM_COMMANDS && pgs_config_bool(w->cfg, "apply.adaptive_in_flight");
    pgs_concurrency_init(&pool->conc, adaptive, APPLY_INITIAL_IN_FLIGHT, size,
                         APPLY_CONCURRENCY_WINDOW_US, pgs_clock_now_us());
    int max_batch = stream->max_batch;
    int opened = 0;
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
        /* with an adaptive limit, connections open as the limit needs them */
        if (i >= pool->conc.limit)
            c->state = C_SPARE;
        else if (conn_open(c) == 0)
            opened++;
    }
    if (opened == 0) {
        snprintf(errstr, errstr_size, "no database connection could be opened");
        pgs_pool_free(pool);
        return NULL;
    }
    if (adaptive)
        pgs_info("apply",
                 "%s pool ready: %d of %d connections, pipeline mode, in-flight limit adaptive "
                 "(up to %d connections, opened as the limit needs them)",
                 stream->name, opened, pool->conc.limit, size);
    else
        pgs_info("apply", "%s pool ready: %d of %d connections, pipeline mode", stream->name,
                 opened, size);
    return pool;
}

void pgs_pool_free(pgs_pool_t *pool)
{
    if (!pool)
        return;
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
    }
    pgs_statements_free(pool->stmts);
    free(pool->waiting);
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
}

int pgs_pool_size(const pgs_pool_t *pool)
{
    return pool->nconns;
}

/* ---- transactions ----------------------------------------------------- */

static void expect(pgs_conn_t *c, rkind_t kind, int idx)
{
    rexp_t *e = &c->exp[c->nexp++];
    e->kind = kind;
    e->idx = idx;
    e->multi = 0;
    e->stmt = -1;
}

/* Sends PREPARE for statement @p sid unless this connection has it. */
static int ensure_prepared(pgs_conn_t *c, int sid, int idx, int multi)
{
    if (conn_prep_state(c, sid) != PREP_NONE)
        return 0;
    pgs_stmt_t *st = pgs_statements_get(c->pool->stmts, sid);
    if (!PQsendPrepare(c->pg, st->name, st->sql, 0, NULL))
        return -1;
    expect(c, R_PREPARE, idx);
    c->exp[c->nexp - 1].multi = multi;
    c->exp[c->nexp - 1].stmt = sid;
    conn_set_prepared(c, sid, PREP_SENT);
    return 0;
}

static void conn_flush(pgs_conn_t *c)
{
    int r = PQflush(c->pg);
    int want = r == 1;
    if (r < 0) {
        conn_down(c, "flush failed");
        return;
    }
    if (want != c->want_write) {
        c->want_write = want;
        epoll_update(c);
    }
}

/* The transaction's statement_timeout: the configured factor times the
 * slowest p99 latency observed for its statement shapes, clamped to the
 * bounds; lock_timeout is half of it, capped by apply.lock_timeout_ms. Both
 * are set with is_local, so they end with the transaction. */
static void txn_timeouts(pgs_conn_t *c, char *stmt_ms, char *lock_ms)
{
    pgs_pool_t *pool = c->pool;
    pgs_work_t **works = c->batch;
    int n = c->nbatch;
    const pgs_config_t *cfg = pool->w->cfg;
    int64_t max_us = pgs_config_int(cfg, "apply.statement_timeout_ms") * 1000;
    int64_t min_us = pgs_config_int(cfg, "apply.statement_timeout_min_ms") * 1000;
    int64_t lock_max_us = pgs_config_int(cfg, "apply.lock_timeout_ms") * 1000;
    double factor = pgs_config_double(cfg, "apply.timeout_factor");
    int64_t p99 = 0;
    if (pool->stream->kind == PGS_STREAM_AUDIT) {
        p99 = pool->audit_latency.p99_us;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        /* the statement this work is actually sent with */
        int sid = c->group_of[i] >= 0 ? works[i]->bstmt : works[i]->stmt;
        int64_t s = pgs_statements_get(pool->stmts, sid)->latency.p99_us;
        if (s < 0) { /* a shape without history: take the upper bound */
            p99 = -1;
            break;
        }
        if (s > p99)
            p99 = s;
    }
    int64_t stmt = pgs_latency_timeout_adaptive(p99, factor, min_us, max_us);
    int64_t lock = stmt / 2;
    if (lock_max_us <= 0 || stmt == 0)
        lock = 0;
    else if (lock > lock_max_us)
        lock = lock_max_us;
    else if (lock == 0)
        lock = 1000;
    snprintf(stmt_ms, 24, "%lld", (long long)((stmt + 999) / 1000));
    snprintf(lock_ms, 24, "%lld", (long long)((lock + 999) / 1000));
}

/* Groups the batch's works by multi-row statement; isolated works, works
 * without a multi-row form and groups smaller than apply.multi_row_min stay
 * single (group_of = -1). */
static void group_batch(pgs_conn_t *c)
{
    c->ngroups = 0;
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        c->group_of[i] = -1;
        c->fresh[i] = 0;
        wk->state = PGS_WORK_APPLYING;
        if (wk->bstmt < 0 || wk->isolate)
            continue;
        int g = 0;
        while (g < c->ngroups && c->group_stmt[g] != wk->bstmt)
            g++;
        if (g == c->ngroups) {
            c->group_stmt[g] = wk->bstmt;
            c->group_size[g] = 0;
            c->group_fresh[g] = 0;
            c->ngroups++;
        }
        c->group_size[g]++;
        c->group_of[i] = g;
    }
    /* a multi-row statement costs more to execute than one single-command
     * statement: it pays off from a few rows on */
    int min = (int)pgs_config_int(c->pool->w->cfg, "apply.multi_row_min");
    int kept = 0;
    for (int g = 0; g < c->ngroups; g++) {
        if (c->group_size[g] >= min) {
            c->group_stmt[kept] = c->group_stmt[g];
            c->group_size[kept] = c->group_size[g];
            for (int i = 0; i < c->nbatch; i++) {
                if (c->group_of[i] == g)
                    c->group_of[i] = kept;
            }
            kept++;
        } else {
            for (int i = 0; i < c->nbatch; i++) {
                if (c->group_of[i] == g)
                    c->group_of[i] = -1;
            }
        }
    }
    c->ngroups = kept;
}

static int send_groups(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    const pgs_command_t *cmds[1000];
    int32_t parts[1000];
    int64_t offs[1000];
    for (int g = 0; g < c->ngroups; g++) {
        size_t n = 0;
        for (int i = 0; i < c->nbatch; i++) {
            if (c->group_of[i] != g)
                continue;
            cmds[n] = c->batch[i]->cmd;
            parts[n] = c->batch[i]->part->partition;
            offs[n] = c->batch[i]->offset;
            n++;
        }
        pgs_stmt_t *st = pgs_statements_get(pool->stmts, c->group_stmt[g]);
        if (ensure_prepared(c, c->group_stmt[g], g, 1) != 0)
            return -1;
        pgs_batch_params_t bp;
        pgs_sqlbatch_params(&st->bs, cmds, parts, offs, n, pool->stream->topic, &bp);
        int ok = PQsendQueryPrepared(c->pg, st->name, bp.n, (const char *const *)bp.values, NULL,
                                     NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect(c, R_MULTI, g);
    }
    return 0;
}

static int send_singles(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    pgs_params_t params;
    for (int i = 0; i < c->nbatch; i++) {
        if (c->group_of[i] >= 0)
            continue;
        pgs_work_t *wk = c->batch[i];
        pgs_stmt_t *st = pgs_statements_get(pool->stmts, wk->stmt);
        if (ensure_prepared(c, wk->stmt, i, 0) != 0)
            return -1;
        pgs_sqlgen_params(&wk->shape, wk->cmd, pool->stream->topic, wk->part->partition, wk->offset,
                          &params);
        if (!PQsendQueryPrepared(c->pg, st->name, params.n, params.values, params.lengths,
                                 params.formats, 0))
            return -1;
        expect(c, R_CMD, i);
    }
    return 0;
}

/* Audit events: one multi-row INSERT for the batch (group 0); an isolated
 * event (its batch failed) goes in a statement of its own. */
static int send_audit(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    const pgs_audit_event_t *evs[1000];
    int32_t parts[1000];
    int64_t offs[1000];
    c->ngroups = 0;
    size_t n = 0;
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        wk->state = PGS_WORK_APPLYING;
        c->fresh[i] = 0;
        c->group_of[i] = wk->isolate ? -1 : 0;
        if (wk->isolate)
            continue;
        evs[n] = wk->audit;
        parts[n] = wk->part->partition;
        offs[n] = wk->offset;
        n++;
    }
    pgs_batch_params_t bp;
    if (n > 0) {
        c->ngroups = 1;
        c->group_size[0] = (int)n;
        c->group_fresh[0] = 0;
        pgs_auditsql_params(evs, parts, offs, n, pool->stream->topic, &bp);
        int ok = PQsendQueryPrepared(c->pg, PGS_AUDITSQL_NAME, bp.n, (const char *const *)bp.values,
                                     NULL, NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect(c, R_MULTI, 0);
    }
    for (int i = 0; i < c->nbatch; i++) {
        if (c->group_of[i] >= 0)
            continue;
        pgs_work_t *wk = c->batch[i];
        const pgs_audit_event_t *one = wk->audit;
        pgs_auditsql_params(&one, &wk->part->partition, &wk->offset, 1, pool->stream->topic, &bp);
        int ok = PQsendQueryPrepared(c->pg, PGS_AUDITSQL_NAME, bp.n, (const char *const *)bp.values,
                                     NULL, NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect(c, R_CMD, i);
    }
    return 0;
}

/* Sends one transaction for works[0..n) (all of one clinic). */
static int txn_start(pgs_conn_t *c, pgs_work_t **works, int n)
{
    pgs_pool_t *pool = c->pool;
    c->nbatch = n;
    c->nexp = 0;
    c->exp_pos = 0;
    c->failed = 0;
    c->fail_cmd = -1;
    c->fail_group = -1;
    c->fail_outage = 0;
    c->commit_ok = 0;
    c->fail_commit = 0;
    c->in_rollback = 0;
    c->started_us = pgs_clock_now_us();
    memcpy(c->batch, works, (size_t)n * sizeof(*works));
    const char *clinic = work_clinic(works[0]);
    int audit = pool->stream->kind == PGS_STREAM_AUDIT;
    if (!audit) {
        for (int i = 0; i < n; i++)
            work_statements(pool, works[i]);
        group_batch(c);
    }

    if (!PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    expect(c, R_BEGIN, -1);
    char stmt_ms[24], lock_ms[24];
    txn_timeouts(c, stmt_ms, lock_ms);
    const char *setup[3] = {clinic, stmt_ms, lock_ms};
    if (!PQsendQueryPrepared(c->pg, "pgs_txn_setup", 3, setup, NULL, NULL, 0))
        return -1;
    expect(c, R_CLINIC, -1);
    if (audit ? send_audit(c) != 0 : send_groups(c) != 0 || send_singles(c) != 0)
        return -1;
    if (!PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    expect(c, R_COMMIT, -1);
    if (!PQpipelineSync(c->pg))
        return -1;
    expect(c, R_SYNC, -1);
    c->state = C_BUSY;
    conn_flush(c);
    return 0;
}

/* A transient error spends one attempt: the work waits out a backoff with
 * full jitter while its lane stays blocked (only its own key is held back,
 * and its offset cannot be stored), or is dead-lettered once the attempts
 * are used up. */
static void work_retry_later(pgs_pool_t *pool, pgs_work_t *wk, const char *code, const char *msg)
{
    pgs_worker_t *w = pool->w;
    wk->attempts++;
    if (wk->attempts >= pgs_config_int(w->cfg, "retry.max_attempts")) {
        pgs_warn("apply", "command out of attempts after %d: partition=%d offset=%lld code=%s",
                 wk->attempts, (int)wk->part->partition, (long long)wk->offset, code);
        pgs_dlq_send(w, wk, PGS_E_DB_TRANSIENT, code, msg);
        return;
    }
    w->ctr.retried++;
    int64_t delay = pgs_backoff_delay_us(
        wk->attempts, pgs_config_int(w->cfg, "retry.backoff_initial_ms") * 1000,
        pgs_config_int(w->cfg, "retry.backoff_max_ms") * 1000, &pool->rng);
    wk->retry_at_us = pgs_clock_now_us() + delay;
    wk->state = PGS_WORK_QUEUED;
    if (pool->nwaiting == pool->waiting_cap) {
        pool->waiting_cap = pool->waiting_cap ? pool->waiting_cap * 2 : 64;
        pool->waiting = realloc(pool->waiting, pool->waiting_cap * sizeof(*pool->waiting));
        if (!pool->waiting)
            abort();
    }
    pool->waiting[pool->nwaiting++] = wk;
}

/* Works whose backoff has passed go back to the front of their lanes. */
static void retry_due(pgs_pool_t *pool, int64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < pool->nwaiting; i++) {
        pgs_work_t *wk = pool->waiting[i];
        if (wk->retry_at_us <= now)
            pgs_lanes_retry(pool->stream->lanes, &wk->lane);
        else
            pool->waiting[keep++] = wk;
    }
    pool->nwaiting = keep;
}

/* Gives works of the batch back to their lanes without spending an attempt
 * (they were not at fault: another command failed, or the database went
 * away). @p skip is a batch index left alone, or -1. */
static void batch_requeue(pgs_conn_t *c, int skip)
{
    for (int i = 0; i < c->nbatch; i++) {
        if (i == skip)
            continue;
        pgs_work_t *wk = c->batch[i];
        wk->state = PGS_WORK_QUEUED;
        pgs_lanes_retry(c->pool->stream->lanes, &wk->lane);
    }
    c->nbatch = 0;
}

static void batch_succeeded(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    pgs_worker_t *w = pool->w;
    int64_t now = pgs_clock_now_us();
    int64_t took = now - c->started_us;
    if (pgs_breaker_success(&pool->breaker, now))
        pgs_info("apply", "circuit breaker closed: database back, work resumed after %lld ms",
                 (long long)(pool->breaker.last_open_duration_us / 1000));
    pgs_concurrency_done(&pool->conc, c->nbatch);
    int audit = pool->stream->kind == PGS_STREAM_AUDIT;
    if (audit)
        pgs_latency_record(&pool->audit_latency, took);
    for (int g = 0; g < c->ngroups && !audit; g++)
        pgs_latency_record(&pgs_statements_get(pool->stmts, c->group_stmt[g])->latency, took);
    int last = -1;
    for (int i = 0; i < c->nbatch && !audit; i++) {
        int sid = c->batch[i]->stmt;
        if (c->group_of[i] < 0 && sid != last)
            pgs_latency_record(&pgs_statements_get(pool->stmts, sid)->latency, took);
        last = sid;
    }
    int64_t slow_ms = pgs_config_int(w->cfg, "log.slow_statement_ms");
    if (slow_ms > 0 && took / 1000 >= slow_ms)
        pgs_warn("apply", "slow transaction: %d %s of clinic %s, first %s on %s, %lld ms",
                 c->nbatch, pool->stream->name, work_clinic(c->batch[0]), work_op(c->batch[0]),
                 work_entity(c->batch[0]), (long long)(took / 1000));
    int applied = 0;
    for (int i = 0; i < c->nbatch; i++)
        applied += c->group_of[i] < 0 ? c->fresh[i] : 0;
    for (int g = 0; g < c->ngroups; g++)
        applied += c->group_fresh[g];
    /* a command re-sent after a connection loss that found its id already
     * recorded was committed by this worker's lost transaction: applied,
     * not a duplicate */
    int in_doubt = 0;
    for (int i = 0; i < c->nbatch; i++)
        in_doubt += c->batch[i]->in_doubt;
    if (in_doubt > 0) {
        int recovered = c->nbatch - applied < in_doubt ? c->nbatch - applied : in_doubt;
        applied += recovered;
        pgs_info("apply",
                 "%d of %d command(s) re-sent after a lost connection had committed "
                 "before it went",
                 recovered, in_doubt);
    }
    if (audit) {
        pool->stream->stored += applied;
        pool->stream->duplicates += c->nbatch - applied;
    } else {
        pgs_hist_record(&w->ctr.commit_latency, (uint64_t)took);
        pgs_hist_record(&w->ctr.total_commit_latency, (uint64_t)took);
        w->ctr.transactions++;
        pgs_complete_count_applied(w, work_clinic(c->batch[0]), applied, took);
        w->ctr.applied += applied;
        w->ctr.total_applied += applied;
        w->ctr.duplicates += c->nbatch - applied;
        w->ctr.total_duplicates += c->nbatch - applied;
    }
    for (int i = 0; i < c->nbatch; i++) {
        c->batch[i]->isolate = 0;
        pgs_complete_work(w, c->batch[i]);
    }
    c->nbatch = 0;
}

/* The transaction failed: one command is at fault (permanent error) or the
 * whole transaction must be tried again (transient error). */
static void batch_failed(pgs_conn_t *c)
{
    pgs_worker_t *w = c->pool->w;
    conn_forget_unconfirmed(c);
    if (c->fail_commit) {
        if (c->nbatch == 1) {
            pgs_work_t *bad = c->batch[0];
            bad->attempts++;
            c->nbatch = 0;
            pgs_dlq_send(w, bad, c->fail_err, c->fail_code, c->fail_msg);
            return;
        }
        pgs_info("apply",
                 "COMMIT of %d command(s) failed (SQLSTATE %s): sending each in a "
                 "transaction of its own to find the one at fault",
                 c->nbatch, c->fail_code);
        for (int i = 0; i < c->nbatch; i++)
            c->batch[i]->alone = 1;
        batch_requeue(c, -1);
        return;
    }
    if (c->fail_group >= 0 && !pgs_error_is_transient(c->fail_err) && !c->fail_outage) {
        /* which row of the multi-row statement? send its commands again one
         * statement each: the one at fault then fails alone */
        int n = 0;
        for (int i = 0; i < c->nbatch; i++) {
            if (c->group_of[i] == c->fail_group) {
                c->batch[i]->isolate = 1;
                n++;
            }
        }
        pgs_info("apply",
                 "multi-row statement of %d command(s) failed (SQLSTATE %s): sending "
                 "them one by one to find the one at fault",
                 n, c->fail_code);
        batch_requeue(c, -1);
        return;
    }
    if (c->fail_cmd >= 0 && !pgs_error_is_transient(c->fail_err)) {
        pgs_work_t *bad = c->batch[c->fail_cmd];
        bad->attempts++;
        pgs_info("apply",
                 "command failed permanently: entity=%s op=%s partition=%d offset=%lld "
                 "code=%s; dead-lettering it, %d other command(s) go again",
                 work_entity(bad), work_op(bad), (int)bad->part->partition, (long long)bad->offset,
                 c->fail_code, c->nbatch - 1);
        batch_requeue(c, c->fail_cmd);
        pgs_dlq_send(w, bad, c->fail_err, c->fail_code, c->fail_msg);
        return;
    }
    const char *code = c->fail_code[0] ? c->fail_code : pgs_error_code(PGS_E_DB_TRANSIENT);
    if (c->fail_outage) {
        /* the database is going away (shutdown, no connections): not the
         * commands' fault, no attempt is spent; the breaker decides */
        pgs_warn("apply", "transaction of %d command(s) hit a database outage (SQLSTATE %s)",
                 c->nbatch, code);
        if (pgs_breaker_failure(&c->pool->breaker, pgs_clock_now_us()))
            pgs_warn("apply", "circuit breaker open: dispatch stopped, partitions paused");
        batch_requeue(c, -1);
        return;
    }
    pgs_warn("apply", "transaction of %d command(s) failed transiently (SQLSTATE %s): %s",
             c->nbatch, code,
             c->fail_cmd >= 0 ? "its command backs off, the others go again" : "all back off");
    if (c->fail_cmd >= 0) {
        pgs_work_t *culprit = c->batch[c->fail_cmd];
        batch_requeue(c, c->fail_cmd);
        work_retry_later(c->pool, culprit, code, c->fail_msg);
        return;
    }
    if (c->fail_group >= 0) {
        for (int i = 0; i < c->nbatch; i++) {
            pgs_work_t *wk = c->batch[i];
            if (c->group_of[i] == c->fail_group) {
                work_retry_later(c->pool, wk, code, c->fail_msg);
            } else {
                wk->state = PGS_WORK_QUEUED;
                pgs_lanes_retry(c->pool->stream->lanes, &wk->lane);
            }
        }
        c->nbatch = 0;
        return;
    }
    for (int i = 0; i < c->nbatch; i++)
        work_retry_later(c->pool, c->batch[i], code, c->fail_msg);
    c->nbatch = 0;
}

/* Builds a PHI-free description of a server error: PostgreSQL's primary
 * message can quote the rejected value, so only the SQLSTATE and the names
 * of the objects involved are kept. */
static void describe_error(const PGresult *res, const pgs_work_t *wk, char *buf, size_t size)
{
    const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    const char *column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    const char *datatype = PQresultErrorField(res, PG_DIAG_DATATYPE_NAME);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    int n = snprintf(buf, size, "database rejected %s on %s (SQLSTATE %s)",
                     wk ? work_op(wk) : "transaction", work_entity(wk), state ? state : "none");
    if (constraint && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", constraint %s", constraint);
    if (column && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", column %s", column);
    if (datatype && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", type %s", datatype);
    if (state && strcmp(state, PGS_SQLSTATE_ROW_PRECONDITION) == 0)
        snprintf(buf, size,
                 "%s on %s matched no row (missing, or version differs from "
                 "expected_version)",
                 wk ? work_op(wk) : "command", work_entity(wk));
}

static void record_failure(pgs_conn_t *c, const rexp_t *e, const PGresult *res)
{
    if (c->failed)
        return;
    c->failed = 1;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->fail_code, sizeof(c->fail_code), "%s", state ? state : "");
    c->fail_err = pgs_error_sqlstate_classify(state);
    c->fail_outage = pgs_error_sqlstate_is_outage(state);
    pgs_work_t *wk = NULL;
    if (e->kind == R_MULTI || (e->kind == R_PREPARE && e->multi)) {
        c->fail_group = e->idx;
        for (int i = 0; i < c->nbatch && !wk; i++)
            wk = c->group_of[i] == e->idx ? c->batch[i] : NULL;
    } else if (e->kind == R_CMD || e->kind == R_PREPARE) {
        c->fail_cmd = e->idx;
        wk = c->batch[e->idx];
    } else if (e->kind == R_COMMIT && !pgs_error_is_transient(c->fail_err) && !c->fail_outage) {
        /* a deferred constraint, checked at COMMIT: one of the commands is at
         * fault, which one only a transaction of its own can tell */
        c->fail_commit = 1;
    } else {
        /* BEGIN or the setup statement: not a command's fault */
        if (c->fail_err != PGS_E_DB_TRANSIENT)
            pgs_error("apply", "transaction control failed (SQLSTATE %s)", state ? state : "none");
        c->fail_err = PGS_E_DB_TRANSIENT;
    }
    if (res)
        describe_error(res, wk, c->fail_msg, sizeof(c->fail_msg));
    else
        snprintf(c->fail_msg, sizeof(c->fail_msg), "connection lost");
}

static void on_sync(pgs_conn_t *c)
{
    if (c->in_rollback) {
        c->in_rollback = 0;
        c->state = C_IDLE;
        batch_failed(c);
        return;
    }
    if (!c->failed) {
        c->state = C_IDLE;
        batch_succeeded(c);
        return;
    }
    /* The explicit transaction is in aborted state: roll it back before the
     * connection is used again, then settle the batch. */
    c->nexp = 0;
    c->exp_pos = 0;
    if (!PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg)) {
        conn_down(c, "rollback failed");
        return;
    }
    expect(c, R_ROLLBACK, -1);
    expect(c, R_SYNC, -1);
    c->in_rollback = 1;
    conn_flush(c);
}

static void conn_read(pgs_conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_down(c, "connection lost");
        return;
    }
    while (c->state == C_BUSY && c->exp_pos < c->nexp) {
        if (PQisBusy(c->pg))
            break;
        PGresult *res = PQgetResult(c->pg);
        rexp_t *e = &c->exp[c->exp_pos];
        if (e->kind == R_SYNC) {
            if (!res)
                break; /* the sync's result has not arrived yet */
            ExecStatusType st = PQresultStatus(res);
            PQclear(res);
            if (st != PGRES_PIPELINE_SYNC) {
                conn_down(c, "protocol out of step");
                return;
            }
            c->exp_pos++;
            on_sync(c);
            continue;
        }
        if (!res) { /* end of this query's results */
            c->exp_pos++;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        switch (st) {
        case PGRES_TUPLES_OK:
            if (e->kind == R_CMD && PQntuples(res) == 1)
                c->fresh[e->idx] = PQgetvalue(res, 0, 0)[0] == '1';
            else if (e->kind == R_MULTI && PQntuples(res) == 1)
                c->group_fresh[e->idx] = atoi(PQgetvalue(res, 0, 0));
            break;
        case PGRES_COMMAND_OK:
            if (e->kind == R_PREPARE)
                conn_set_prepared(c, e->stmt, PREP_DONE);
            else if (e->kind == R_COMMIT)
                c->commit_ok = 1;
            break;
        case PGRES_PIPELINE_ABORTED:
            break;
        default:
            record_failure(c, e, res);
            break;
        }
        PQclear(res);
    }
    if (c->state == C_BUSY && c->pg && PQstatus(c->pg) == CONNECTION_BAD)
        conn_down(c, "connection lost");
}

/* The connection is gone: its transaction may or may not have committed.
 * The batch goes back to its lanes; the idempotency record makes the
 * retry of an already committed command a counted duplicate. */
static void conn_down(pgs_conn_t *c, const char *why)
{
    pgs_pool_t *pool = c->pool;
    /* COMMIT answered OK before the connection went: the transaction is in
     * the database, whatever came (or did not come) after it */
    int committed = c->nbatch > 0 && c->commit_ok && !c->failed && !c->in_rollback;
    pgs_warn("apply", "connection %d down (%s); %d command(s) %s", c->id, why, c->nbatch,
             committed ? "committed before it went" : "will be retried");
    if (c->fd >= 0)
        epoll_ctl(pool->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->state = C_DOWN;
    c->want_write = 0;
    c->next_connect_us = pgs_clock_now_us() + 200000;
    /* otherwise the batch may or may not have committed: it goes again, and
     * the idempotency record makes an already committed command a no-op; a
     * lost connection spends no attempt */
    if (committed) {
        batch_succeeded(c);
    } else if (c->nbatch > 0) {
        for (int i = 0; i < c->nbatch; i++)
            c->batch[i]->in_doubt = !c->failed;
        batch_requeue(c, -1);
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
    if (events & EPOLLOUT)
        conn_flush(c);
    if (c->pg && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        conn_read(c);
}

void pgs_pool_dispatch(pgs_pool_t *pool)
{
    if (pool->nwaiting > 0)
        retry_due(pool, pgs_clock_now_us());
    if (!pgs_breaker_allows_dispatch(&pool->breaker))
        return;
    pgs_work_t *works[1000];
    pgs_lane_item_t *items[1000];
    pgs_lanes_t *lanes = pool->stream->lanes;
    size_t max = (size_t)pool->stream->max_batch < 1000 ? (size_t)pool->stream->max_batch : 1000;
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
        n = keep;
        if (txn_start(c, works, (int)n) != 0) {
            c->nbatch = (int)n;
            conn_down(c, "send failed");
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

/* While the breaker is open, one connection at a time probes the database,
 * with doubling delays; a probe that connects half-opens the breaker and the
 * other connections follow. */
static void breaker_probe(pgs_pool_t *pool, int64_t now)
{
    if (!pgs_breaker_probe_due(&pool->breaker, now))
        return;
    for (int i = 0; i < pool->nconns; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_DOWN)
            continue;
        if (conn_open(c) == 0) {
            pgs_breaker_probe_ok(&pool->breaker, now);
            pgs_info("apply", "circuit breaker half-open: probe connected, resuming work");
        } else {
            pgs_breaker_probe_failed(&pool->breaker, now);
        }
        return;
    }
    /* every connection is still up (errors came from the server): probing
     * means trying work again */
    pgs_breaker_probe_ok(&pool->breaker, now);
}

void pgs_pool_reconfigure(pgs_pool_t *pool)
{
    /* takes effect on the next failure or probe */
    pool->breaker.threshold = (int)pgs_config_int(pool->w->cfg, "breaker.failure_threshold");
    pool->breaker.probe_max_us = pgs_config_int(pool->w->cfg, "breaker.probe_interval_ms") * 1000;
}

const char *pgs_pool_breaker_state(const pgs_pool_t *pool)
{
    return pgs_breaker_state_name(pool->breaker.state);
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
    int before = pool->conc.limit;
    if (pgs_concurrency_tick(&pool->conc, now)) {
        pgs_debug("apply", "%s in-flight limit %d -> %d (%.0f commands/s)", pool->stream->name,
                  before, pool->conc.limit, pool->conc.last_rate);
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
        int first = !c->ever_opened;
        if (conn_open(c) == 0)
            pgs_info("apply", "connection %d %s", c->id, first ? "opened" : "re-established");
        else
            break; /* the database is still away: try the others later */
    }
}
