/* Apply settling: reads a transaction's results in pipeline order against
 * its expected list and settles the batch. Success reports the works
 * applied (fresh or duplicate); a failed statement rolls the transaction
 * back, and then a single command at fault alone gets the error while the
 * others go back to their lanes, the commands of a failed multi-row
 * statement go again one statement each to find the one at fault, and a
 * transient error sends the work into retry backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "policy/resilience.h"
#include "run/pool_internal.h"

/* A transient error spends one attempt: the work waits out a backoff with
 * full jitter while its lane stays blocked (only its own key is held back,
 * and its offset cannot be stored), or is dead-lettered once its retry
 * budget (retry.max_elapsed_ms from its first failure, and
 * retry.max_attempts when set) is spent. */
static void work_retry_later(pgs_pool_t *pool, pgs_work_t *wk, const char *code, const char *msg)
{
    const pgs_config_t *cfg = pool->cfg;
    int64_t now = pgs_clock_now_us();
    if (wk->attempts == 0)
        wk->first_failure_us = now;
    wk->attempts++;
    int64_t elapsed = now - wk->first_failure_us;
    if (pgs_backoff_exhausted(wk->attempts, (int)pgs_config_int(cfg, "retry.max_attempts"), elapsed,
                              pgs_config_int(cfg, "retry.max_elapsed_ms") * 1000)) {
        pgs_warn("apply",
                 "command out of retry budget after %d attempt(s) over %lld ms: partition=%d "
                 "offset=%lld code=%s",
                 wk->attempts, (long long)(elapsed / 1000), (int)wk->part->partition,
                 (long long)wk->offset, code);
        pool->ops.dead_letter(pool->opaque, wk, PGS_E_DB_TRANSIENT, code, msg);
        return;
    }
    int64_t delay =
        pgs_backoff_delay_us(wk->attempts, pgs_config_int(cfg, "retry.backoff_initial_ms") * 1000,
                             pgs_config_int(cfg, "retry.backoff_max_ms") * 1000, &pool->rng);
    pgs_settle_hold(pool, wk, now + delay);
    if (pool->ops.retried)
        pool->ops.retried(pool->opaque, wk, code, delay);
}

void pgs_settle_hold(pgs_pool_t *pool, pgs_work_t *wk, int64_t until_us)
{
    wk->retry_at_us = until_us;
    wk->state = PGS_WORK_QUEUED;
    if (pool->nwaiting == pool->waiting_cap) {
        pool->waiting_cap = pool->waiting_cap ? pool->waiting_cap * 2 : 64;
        pool->waiting = realloc(pool->waiting, pool->waiting_cap * sizeof(*pool->waiting));
        if (!pool->waiting)
            abort();
    }
    pool->waiting[pool->nwaiting++] = wk;
}

void pgs_settle_retry_due(pgs_pool_t *pool, int64_t now)
{
    size_t keep = 0;
    for (size_t i = 0; i < pool->nwaiting; i++) {
        pgs_work_t *wk = pool->waiting[i];
        if (wk->retry_at_us <= now)
            pgs_lanes_retry(pool->lanes, &wk->lane);
        else
            pool->waiting[keep++] = wk;
    }
    pool->nwaiting = keep;
}

/* (they were not at fault: another command failed, or the database went
 * away) */
void pgs_settle_requeue(pgs_conn_t *c, int skip)
{
    for (int i = 0; i < c->nbatch; i++) {
        if (i == skip)
            continue;
        pgs_work_t *wk = c->batch[i];
        wk->state = PGS_WORK_QUEUED;
        pgs_lanes_retry(c->pool->lanes, &wk->lane);
    }
    c->nbatch = 0;
}

void pgs_settle_succeeded(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    int64_t now = pgs_clock_now_us();
    int64_t took = now - c->started_us;
    if (pgs_breaker_success(&pool->breaker, now))
        pgs_info("apply", "circuit breaker closed: database back, work resumed after %lld ms",
                 (long long)(pool->breaker.last_open_duration_us / 1000));
    pgs_concurrency_done(&pool->conc, c->nbatch, took);
    pgs_txn_record_latency(c, took);
    int64_t slow_ms = pgs_config_int(pool->cfg, "log.slow_statement_ms");
    if (slow_ms > 0 && took / 1000 >= slow_ms)
        pgs_warn("apply", "slow transaction: %d %s of clinic %s, first %s on %s, %lld ms",
                 c->nbatch, pool->name, pgs_pool_work_clinic(c->batch[0]),
                 pgs_pool_work_op(c->batch[0]), pgs_pool_work_entity(c->batch[0]),
                 (long long)(took / 1000));
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
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        wk->isolate = 0;
        /* a multi-row statement counts its fresh rows only: a group partly
         * fresh marks each of its commands applied */
        wk->fresh = wk->in_doubt ||
                    (c->group_of[i] < 0 ? c->fresh[i] != 0 : c->group_fresh[c->group_of[i]] > 0);
    }
    if (pool->ops.settled)
        pool->ops.settled(pool->opaque, c->batch, c->nbatch, took, NULL, NULL);
    int n = c->nbatch;
    c->nbatch = 0;
    /* the works are the owner's from here on: it completes and frees them */
    pool->ops.applied(pool->opaque, c->batch, n, applied, took, pgs_pool_work_clinic(c->batch[0]));
}

/* A database error's dead letter carries its SQLSTATE, except where the
 * SQLSTATE is pgscribe's own with a code of its own (a reused command id:
 * IDEMPOTENCY_KEY_REUSED); the logs keep the SQLSTATE. */
static const char *dead_letter_code(const pgs_conn_t *c)
{
    return pgs_error_dead_letter_by_code(c->fail_err) ? pgs_error_code(c->fail_err) : c->fail_code;
}

/* The transaction failed: one command is at fault (permanent error) or the
 * whole transaction must be tried again (transient error). */
static void batch_failed(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    pgs_txn_forget_unconfirmed(c);
    if (pool->ops.settled)
        pool->ops.settled(pool->opaque, c->batch, c->nbatch, pgs_clock_now_us() - c->started_us,
                          c->fail_code[0] ? c->fail_code : pgs_error_code(c->fail_err),
                          c->fail_msg);
    if (c->fail_commit) {
        if (c->nbatch == 1) {
            pgs_work_t *bad = c->batch[0];
            bad->attempts++;
            c->nbatch = 0;
            pool->ops.dead_letter(pool->opaque, bad, c->fail_err, dead_letter_code(c), c->fail_msg);
            return;
        }
        pgs_info("apply",
                 "COMMIT of %d command(s) failed (SQLSTATE %s): sending each in a "
                 "transaction of its own to find the one at fault",
                 c->nbatch, c->fail_code);
        for (int i = 0; i < c->nbatch; i++)
            c->batch[i]->alone = 1;
        pgs_settle_requeue(c, -1);
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
        pgs_settle_requeue(c, -1);
        return;
    }
    if (c->fail_cmd >= 0 && !pgs_error_is_transient(c->fail_err)) {
        pgs_work_t *bad = c->batch[c->fail_cmd];
        bad->attempts++;
        pgs_info("apply",
                 "command failed permanently: entity=%s op=%s partition=%d offset=%lld "
                 "code=%s; dead-lettering it, %d other command(s) go again",
                 pgs_pool_work_entity(bad), pgs_pool_work_op(bad), (int)bad->part->partition,
                 (long long)bad->offset, c->fail_code, c->nbatch - 1);
        pgs_settle_requeue(c, c->fail_cmd);
        pool->ops.dead_letter(pool->opaque, bad, c->fail_err, dead_letter_code(c), c->fail_msg);
        return;
    }
    const char *code = c->fail_code[0] ? c->fail_code : pgs_error_code(PGS_E_DB_TRANSIENT);
    if (c->fail_outage) {
        /* the database is going away (shutdown, no connections): not the
         * commands' fault, no attempt is spent; the breaker decides */
        pgs_warn("apply", "transaction of %d command(s) hit a database outage (SQLSTATE %s)",
                 c->nbatch, code);
        if (pgs_breaker_failure(&pool->breaker, pgs_clock_now_us()))
            pgs_warn("apply", "circuit breaker open: dispatch stopped, partitions paused");
        pgs_settle_requeue(c, -1);
        return;
    }
    pgs_warn("apply", "transaction of %d command(s) failed transiently (SQLSTATE %s): %s",
             c->nbatch, code,
             c->fail_cmd >= 0 ? "its command backs off, the others go again" : "all back off");
    if (c->fail_cmd >= 0) {
        pgs_work_t *culprit = c->batch[c->fail_cmd];
        pgs_settle_requeue(c, c->fail_cmd);
        work_retry_later(pool, culprit, code, c->fail_msg);
        return;
    }
    int n = c->nbatch;
    c->nbatch = 0;
    for (int i = 0; i < n; i++) {
        pgs_work_t *wk = c->batch[i];
        if (c->fail_group < 0 || c->group_of[i] == c->fail_group) {
            work_retry_later(pool, wk, code, c->fail_msg);
        } else {
            wk->state = PGS_WORK_QUEUED;
            pgs_lanes_retry(pool->lanes, &wk->lane);
        }
    }
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
                     wk ? pgs_pool_work_op(wk) : "transaction", pgs_pool_work_entity(wk),
                     state ? state : "none");
    if (constraint && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", constraint %s", constraint);
    if (column && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", column %s", column);
    if (datatype && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", type %s", datatype);
    if (state && strcmp(state, PGS_SQLSTATE_IDEMPOTENCY_KEY_REUSED) == 0)
        snprintf(buf, size,
                 "command id already recorded for a command of other content (clinic, "
                 "entity, op, key, data or expected_version differ)");
    else if (state && strcmp(state, PGS_SQLSTATE_ROW_PRECONDITION) == 0)
        snprintf(buf, size,
                 "%s on %s matched no row (missing, or version differs from "
                 "expected_version)",
                 wk ? pgs_pool_work_op(wk) : "command", pgs_pool_work_entity(wk));
}

static void record_failure(pgs_conn_t *c, const rexp_t *e, const PGresult *res)
{
    if (c->failed)
        return;
    c->failed = 1;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->fail_code, sizeof(c->fail_code), "%s", state ? state : "");
    c->fail_err = pgs_error_pg_classify_in(
        state, res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL,
        res ? PQresultErrorField(res, PG_DIAG_SCHEMA_NAME) : NULL);
    c->fail_outage = pgs_error_sqlstate_is_outage(state);
    pgs_work_t *wk = NULL;
    if (e->kind == R_MULTI || (e->kind == R_PREPARE && e->multi)) {
        c->fail_group = e->idx;
        for (int i = 0; i < c->nbatch && !wk; i++)
            wk = c->group_of[i] == e->idx ? c->batch[i] : NULL;
    } else if (e->kind == R_CMD || e->kind == R_PREPARE) {
        c->fail_cmd = e->idx;
        wk = c->batch[e->idx];
    } else if ((e->kind == R_COMMIT || e->kind == R_WRITE_AUDIT) &&
               !pgs_error_is_transient(c->fail_err) && !c->fail_outage) {
        /* a deferred constraint, checked at COMMIT, or the write audit of
         * every command: one of the commands is at fault, which one only a
         * transaction of its own can tell */
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
        pgs_settle_succeeded(c);
        return;
    }
    /* The explicit transaction is in aborted state: roll it back before the
     * connection is used again, then settle the batch. */
    c->nexp = 0;
    c->exp_pos = 0;
    if (!PQsendQueryParams(c->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(c->pg)) {
        pgs_pool_conn_down(c, "rollback failed");
        return;
    }
    pgs_txn_expect(c, R_ROLLBACK, -1);
    pgs_txn_expect(c, R_SYNC, -1);
    c->in_rollback = 1;
    pgs_pool_conn_flush(c);
}

/* A statement's first result ends its time in the pipeline; one the
 * pipeline skipped (aborted) never ran and is not counted. */
static void profile_result(pgs_conn_t *c, rexp_t *e, PGresult *res, ExecStatusType st)
{
    if (e->prof < 0 || !c->pool->profile || st == PGRES_PIPELINE_ABORTED)
        return;
    uint64_t rows = 0;
    if (st == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *v = PQgetvalue(res, 0, 0);
        rows = e->kind == R_CMD ? v[0] == '1' : strtoull(v, NULL, 10);
    }
    pgs_profile_record(c->pool->profile, e->prof, pgs_clock_now_us() - e->sent_us, rows,
                       st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK);
    e->prof = -1;
}

void pgs_settle_read(pgs_conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        pgs_pool_conn_down(c, "connection lost");
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
                pgs_pool_conn_down(c, "protocol out of step");
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
        profile_result(c, e, res, st);
        switch (st) {
        case PGRES_TUPLES_OK:
            if (e->kind == R_CMD && PQntuples(res) == 1)
                c->fresh[e->idx] = PQgetvalue(res, 0, 0)[0] == '1';
            else if (e->kind == R_MULTI && PQntuples(res) == 1)
                c->group_fresh[e->idx] = atoi(PQgetvalue(res, 0, 0));
            break;
        case PGRES_COMMAND_OK:
            if (e->kind == R_PREPARE)
                pgs_txn_set_prepared(c, e->stmt, PREP_DONE);
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
        pgs_pool_conn_down(c, "connection lost");
}
