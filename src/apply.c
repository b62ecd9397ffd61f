/* Apply: a pool of non-blocking libpq connections in pipeline mode; each
 * runs one transaction at a time carrying up to apply.max_batch commands of
 * one clinic, sent in one round trip:
 *
 *   BEGIN; set_config('pgscribe.clinic_id', clinic, true);
 *   [PREPARE shape]; EXECUTE shape(cmd 1); ... ; COMMIT; Sync
 *
 * Each command statement records its id, writes its audit row and applies its
 * write together (see sqlgen.c). When one command fails, the transaction is
 * rolled back, that command alone gets the error and the others go back to
 * their lanes, to be sent again without it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "pgscribe/log.h"
#include "worker.h"

typedef enum { R_BEGIN, R_CLINIC, R_PREPARE, R_CMD, R_COMMIT, R_ROLLBACK, R_SYNC } rkind_t;

typedef struct {
    rkind_t kind;
    int idx; /* batch index for R_PREPARE and R_CMD */
} rexp_t;

typedef enum { C_DOWN = 0, C_IDLE, C_BUSY } cstate_t;

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
    int *fresh; /* per batch index: 1 applied, 0 duplicate */
    rexp_t *exp;
    int nexp, exp_pos, exp_cap;
    int failed;   /* an error was seen before the sync */
    int fail_cmd; /* batch index at fault, or -1 */
    int fail_prepare_shape;
    pgs_err_t fail_err;
    char fail_code[8];
    char fail_msg[256];
    int in_rollback;
    int want_write;
    int64_t started_us;
    int64_t next_connect_us;
    int connect_failures;
} pgs_conn_t;

/* Every shape seen gets a small id and its SQL text, shared by connections. */
typedef struct {
    pgs_shape_t shape;
    char *sql;
    char name[24];
} shape_entry_t;

struct pgs_pool_s {
    pgs_worker_t *w;
    char *conninfo;
    pgs_conn_t *conns;
    int nconns;
    int busy;
    shape_entry_t *shapes;
    size_t nshapes, shapes_cap;
    int64_t retry_not_before_us; /* after a transient failure, pause dispatch briefly */
    int64_t last_down_log_us;
};

static const char *const SQL_SET_CLINIC = "SELECT set_config('pgscribe.clinic_id', $1, true)";

static void conn_down(pgs_conn_t *c, const char *why);

/* ---- shape registry --------------------------------------------------- */

static int shape_id(pgs_pool_t *pool, const pgs_shape_t *shape)
{
    for (size_t i = 0; i < pool->nshapes; i++) {
        if (pool->shapes[i].shape.hash == shape->hash &&
            pgs_shape_equal(&pool->shapes[i].shape, shape))
            return (int)i;
    }
    if (pool->nshapes == pool->shapes_cap) {
        pool->shapes_cap = pool->shapes_cap ? pool->shapes_cap * 2 : 64;
        pool->shapes = realloc(pool->shapes, pool->shapes_cap * sizeof(*pool->shapes));
        if (!pool->shapes)
            abort();
    }
    shape_entry_t *e = &pool->shapes[pool->nshapes];
    e->shape = *shape;
    e->sql = pgs_sqlgen_statement(pgs_catalog_schema(pool->w->catalog), shape);
    snprintf(e->name, sizeof(e->name), "pgs_s%zu", pool->nshapes);
    pgs_debug("apply", "new statement shape %s for %s.%s op=%s", e->name,
              pgs_catalog_schema(pool->w->catalog), shape->ent->name, pgs_op_name(shape->op));
    return (int)pool->nshapes++;
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
    PGconn *pg = PQconnectdb(pool->conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host/socket, never the password */
        snprintf(err, sizeof(err), "%s", PQerrorMessage(pg));
        PQfinish(pg);
        c->connect_failures++;
        int64_t backoff = 100000LL << (c->connect_failures < 6 ? c->connect_failures : 6);
        c->next_connect_us = pgs_now_us() + backoff;
        int64_t now = pgs_now_us();
        if (now - pool->last_down_log_us > 5000000) {
            pool->last_down_log_us = now;
            pgs_warn("apply", "database connection failed: %s", err);
        }
        return -1;
    }
    char setup[128];
    snprintf(setup, sizeof(setup), "SET statement_timeout = %lld",
             (long long)pgs_config_int(pool->w->cfg, "apply.statement_timeout_ms"));
    PGresult *r = PQexec(pg, setup);
    PQclear(r);
    r = PQexec(pg, "SET application_name = 'pgscribe'");
    PQclear(r);
    r = PQprepare(pg, "pgs_clinic", SQL_SET_CLINIC, 1, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        pgs_error("apply", "cannot prepare clinic setter: %s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(pg);
        c->next_connect_us = pgs_now_us() + 1000000;
        return -1;
    }
    PQclear(r);
    if (PQsetnonblocking(pg, 1) != 0 || PQenterPipelineMode(pg) != 1) {
        pgs_error("apply", "cannot enter pipeline mode: %s", PQerrorMessage(pg));
        PQfinish(pg);
        c->next_connect_us = pgs_now_us() + 1000000;
        return -1;
    }
    c->pg = pg;
    c->fd = PQsocket(pg);
    c->state = C_IDLE;
    c->want_write = 0;
    c->connect_failures = 0;
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

pgs_pool_t *pgs_pool_new(pgs_worker_t *w, const char *conninfo, int size, char *errstr,
                         size_t errstr_size)
{
    pgs_pool_t *pool = calloc(1, sizeof(*pool));
    pool->w = w;
    pool->conninfo = strdup(conninfo);
    pool->nconns = size;
    pool->conns = calloc((size_t)size, sizeof(*pool->conns));
    int max_batch = w->max_batch;
    int opened = 0;
    for (int i = 0; i < size; i++) {
        pgs_conn_t *c = &pool->conns[i];
        c->pool = pool;
        c->id = i;
        c->fd = -1;
        c->batch = calloc((size_t)max_batch, sizeof(*c->batch));
        c->fresh = calloc((size_t)max_batch, sizeof(*c->fresh));
        c->exp_cap = 2 * max_batch + 8;
        c->exp = calloc((size_t)c->exp_cap, sizeof(*c->exp));
        if (conn_open(c) == 0)
            opened++;
    }
    if (opened == 0) {
        snprintf(errstr, errstr_size, "no database connection could be opened");
        pgs_pool_free(pool);
        return NULL;
    }
    pgs_info("apply", "connection pool ready: %d of %d connections, pipeline mode", opened, size);
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
        free(c->exp);
        free(c->prepared);
    }
    for (size_t i = 0; i < pool->nshapes; i++)
        free(pool->shapes[i].sql);
    free(pool->shapes);
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
}

int pgs_pool_busy(const pgs_pool_t *pool)
{
    return pool->busy;
}

int pgs_pool_size(const pgs_pool_t *pool)
{
    return pool->nconns;
}

/* ---- transactions ----------------------------------------------------- */

static void expect(pgs_conn_t *c, rkind_t kind, int idx)
{
    c->exp[c->nexp].kind = kind;
    c->exp[c->nexp].idx = idx;
    c->nexp++;
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

/* Sends one transaction for works[0..n) (all of one clinic). */
static int txn_start(pgs_conn_t *c, pgs_work_t **works, int n)
{
    pgs_pool_t *pool = c->pool;
    pgs_worker_t *w = pool->w;
    c->nbatch = n;
    c->nexp = 0;
    c->exp_pos = 0;
    c->failed = 0;
    c->fail_cmd = -1;
    c->fail_prepare_shape = -1;
    c->in_rollback = 0;
    c->started_us = pgs_now_us();
    memcpy(c->batch, works, (size_t)n * sizeof(*works));
    const char *clinic = works[0]->cmd->clinic_id;

    if (!PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    expect(c, R_BEGIN, -1);
    if (!PQsendQueryPrepared(c->pg, "pgs_clinic", 1, &clinic, NULL, NULL, 0))
        return -1;
    expect(c, R_CLINIC, -1);
    pgs_params_t params;
    for (int i = 0; i < n; i++) {
        pgs_work_t *wk = works[i];
        wk->state = PGS_WORK_APPLYING;
        c->fresh[i] = 0;
        int sid = shape_id(pool, &wk->shape);
        shape_entry_t *se = &pool->shapes[sid];
        if (conn_prep_state(c, sid) == PREP_NONE) {
            if (!PQsendPrepare(c->pg, se->name, se->sql, 0, NULL))
                return -1;
            expect(c, R_PREPARE, i);
            conn_set_prepared(c, sid, PREP_SENT);
        }
        pgs_sqlgen_params(&wk->shape, wk->cmd, w->topic, wk->part->partition, wk->offset, &params);
        if (!PQsendQueryPrepared(c->pg, se->name, params.n, params.values, params.lengths,
                                 params.formats, 0))
            return -1;
        expect(c, R_CMD, i);
    }
    if (!PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    expect(c, R_COMMIT, -1);
    if (!PQpipelineSync(c->pg))
        return -1;
    expect(c, R_SYNC, -1);
    c->state = C_BUSY;
    pool->busy++;
    conn_flush(c);
    return 0;
}

/* Gives every work of the batch back to its lane (no attempt is spent). */
static void batch_requeue(pgs_conn_t *c, int skip, int count_attempt)
{
    pgs_worker_t *w = c->pool->w;
    for (int i = 0; i < c->nbatch; i++) {
        if (i == skip)
            continue;
        pgs_work_t *wk = c->batch[i];
        wk->state = PGS_WORK_QUEUED;
        if (count_attempt) {
            wk->attempts++;
            w->ctr.retried++;
        }
        pgs_lanes_retry(w->lanes, &wk->lane);
    }
    c->nbatch = 0;
}

static void batch_succeeded(pgs_conn_t *c)
{
    pgs_worker_t *w = c->pool->w;
    int64_t now = pgs_now_us();
    int64_t took = now - c->started_us;
    pgs_hist_record(&w->ctr.commit_latency, (uint64_t)took);
    pgs_hist_record(&w->ctr.total_commit_latency, (uint64_t)took);
    w->ctr.transactions++;
    int applied = 0;
    for (int i = 0; i < c->nbatch; i++)
        applied += c->fresh[i];
    const char *clinic = c->batch[0]->cmd->clinic_id;
    pgs_complete_count_applied(w, clinic, applied, took);
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        if (c->fresh[i]) {
            w->ctr.applied++;
            w->ctr.total_applied++;
        } else {
            w->ctr.duplicates++;
            w->ctr.total_duplicates++;
        }
        pgs_complete_work(w, wk);
    }
    c->nbatch = 0;
}

/* The transaction failed: one command is at fault (permanent error) or the
 * whole transaction must be tried again (transient error). */
static void batch_failed(pgs_conn_t *c)
{
    pgs_worker_t *w = c->pool->w;
    conn_forget_unconfirmed(c);
    if (c->fail_cmd >= 0 && !pgs_err_is_transient(c->fail_err)) {
        pgs_work_t *bad = c->batch[c->fail_cmd];
        bad->attempts++;
        pgs_info("apply",
                 "command failed permanently: entity=%s op=%s partition=%d offset=%lld "
                 "code=%s; dead-lettering it, %d other command(s) go again",
                 bad->cmd->entity, pgs_op_name(bad->cmd->op), (int)bad->part->partition,
                 (long long)bad->offset, c->fail_code, c->nbatch - 1);
        batch_requeue(c, c->fail_cmd, 0);
        pgs_dlq_send(w, bad, c->fail_err, c->fail_code, c->fail_msg);
        return;
    }
    pgs_warn("apply", "transaction of %d command(s) failed transiently (SQLSTATE %s): retrying",
             c->nbatch, c->fail_code[0] ? c->fail_code : "none");
    batch_requeue(c, -1, 1);
    c->pool->retry_not_before_us = pgs_now_us() + 50000;
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
                     wk ? pgs_op_name(wk->cmd->op) : "transaction", wk ? wk->cmd->entity : "-",
                     state ? state : "none");
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
                 wk ? pgs_op_name(wk->cmd->op) : "command", wk ? wk->cmd->entity : "-");
}

static void record_failure(pgs_conn_t *c, const rexp_t *e, const PGresult *res)
{
    if (c->failed)
        return;
    c->failed = 1;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->fail_code, sizeof(c->fail_code), "%s", state ? state : "");
    c->fail_err = pgs_sqlstate_classify(state);
    pgs_work_t *wk = NULL;
    if (e->kind == R_CMD || e->kind == R_PREPARE) {
        c->fail_cmd = e->idx;
        wk = c->batch[e->idx];
        if (e->kind == R_PREPARE)
            c->fail_prepare_shape = shape_id(c->pool, &wk->shape);
    } else {
        /* BEGIN, set_config or COMMIT: not a command's fault */
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
    pgs_pool_t *pool = c->pool;
    if (c->in_rollback) {
        c->in_rollback = 0;
        c->state = C_IDLE;
        pool->busy--;
        batch_failed(c);
        return;
    }
    if (!c->failed) {
        c->state = C_IDLE;
        pool->busy--;
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
            break;
        case PGRES_COMMAND_OK:
            if (e->kind == R_PREPARE)
                conn_set_prepared(c, shape_id(c->pool, &c->batch[e->idx]->shape), PREP_DONE);
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
    pgs_warn("apply", "connection %d down (%s); %d command(s) will be retried", c->id, why,
             c->nbatch);
    if (c->fd >= 0)
        epoll_ctl(pool->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    if (c->state == C_BUSY)
        pool->busy--;
    c->state = C_DOWN;
    c->want_write = 0;
    c->next_connect_us = pgs_now_us() + 200000;
    if (c->nbatch > 0) {
        snprintf(c->fail_code, sizeof(c->fail_code), "08006");
        batch_requeue(c, -1, 1);
    }
    pool->retry_not_before_us = pgs_now_us() + 100000;
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
    pgs_worker_t *w = pool->w;
    if (pool->retry_not_before_us && pgs_now_us() < pool->retry_not_before_us)
        return;
    pool->retry_not_before_us = 0;
    pgs_work_t *works[1000];
    pgs_lane_item_t *items[1000];
    size_t max = (size_t)w->max_batch < 1000 ? (size_t)w->max_batch : 1000;
    for (int i = 0; i < pool->nconns && pgs_lanes_ready(w->lanes) > 0; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_IDLE)
            continue;
        size_t n = pgs_lanes_take(w->lanes, items, max);
        if (n == 0)
            break;
        for (size_t k = 0; k < n; k++)
            works[k] = (pgs_work_t *)items[k];
        if (txn_start(c, works, (int)n) != 0) {
            c->nbatch = (int)n;
            conn_down(c, "send failed");
        }
    }
}

void pgs_pool_tick(pgs_pool_t *pool)
{
    int64_t now = pgs_now_us();
    int attempts = 0;
    for (int i = 0; i < pool->nconns && attempts < 4; i++) {
        pgs_conn_t *c = &pool->conns[i];
        if (c->state != C_DOWN || now < c->next_connect_us)
            continue;
        attempts++;
        if (conn_open(c) == 0)
            pgs_info("apply", "connection %d re-established", c->id);
        else
            break; /* the database is still away: try the others later */
    }
}
