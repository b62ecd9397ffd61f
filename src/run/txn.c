/* Apply transactions: builds and sends one transaction of up to
 * apply.max_batch works of one clinic, in one round trip:
 *
 *   BEGIN; set_config('pgscribe.clinic_id', clinic, true);
 *   [PREPARE shape]; EXECUTE shape(cmd 1); ... ; EXECUTE write audit;
 *   COMMIT; Sync
 *
 * Commands of the transaction that share a batch shape go in ONE multi-row
 * statement over arrays (sqlbatch.c); a lone command uses its single-command
 * statement (sqlgen.c). Either records the command id and applies the write
 * together; the transaction's last statement before COMMIT appends the write
 * audit of every command it applied (txnaudit.c), so the audit commits with
 * the writes or not at all. Each result the pipeline will answer is noted
 * in the connection's expected list, which settle.c reads against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "policy/resilience.h"
#include "run/floors.h"
#include "run/offsets.h"
#include "run/pool_internal.h"
#include "sql/auditsql.h"
#include "sql/sqlbatch.h"
#include "sql/sqlgen.h"
#include "sql/txnaudit.h"

#define TXN_MAX_BATCH 1000

/* Resolves, for each transaction that carries the work (a handle from an
 * earlier transaction may name a statement since evicted, and the lookup
 * marks the statement in use for this transaction's epoch), the multi-row
 * statement of a work, and its single-command one only when it
 * cannot travel in a multi-row statement: registering every work's exact
 * shape (each partial UPDATE's column set is one) would flood the bounded
 * registry with statements never sent, and evict the hot multi-row ones,
 * each eviction a DEALLOCATE and a PREPARE again. single_statements()
 * resolves the rest once the batch is grouped. */
static void work_statements(pgs_pool_t *pool, pgs_work_t *wk)
{
    pgs_bshape_t bs;
    wk->bstmt = pgs_sqlbatch_shape_of(wk->ent, wk->cmd, &wk->shape, &bs) == 0
                    ? pgs_statements_batch(pool->stmts, &bs)
                    : -1;
    wk->stmt = wk->bstmt < 0 || wk->isolate ? pgs_statements_single(pool->stmts, &wk->shape) : -1;
}

/* The single-command statements of the works group_batch left alone. */
static void single_statements(pgs_conn_t *c)
{
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        if (c->group_of[i] < 0 && wk->stmt < 0)
            wk->stmt = pgs_statements_single(c->pool->stmts, &wk->shape);
    }
}

/* What @p c has of statement @p sid: a slot prepared with another serial
 * holds an evicted statement, not this one. */
static int conn_prep_state(pgs_conn_t *c, int sid)
{
    size_t slot = pgs_statements_slot(sid);
    const pgs_stmt_t *st = pgs_statements_get(c->pool->stmts, sid);
    if (slot >= c->prepared_cap || !st || c->prepared_serial[slot] != st->serial)
        return PREP_NONE;
    return c->prepared[slot];
}

void pgs_txn_forget_unconfirmed(pgs_conn_t *c)
{
    for (size_t i = 0; i < c->prepared_cap; i++) {
        if (c->prepared[i] == PREP_SENT)
            c->prepared[i] = PREP_NONE;
    }
}

/* PREP_SENT records the serial of the statement sent, so that its
 * confirmation (PREP_DONE) stays true of that statement even when the
 * registry evicts it meanwhile. */
void pgs_txn_set_prepared(pgs_conn_t *c, int sid, int on)
{
    size_t slot = pgs_statements_slot(sid);
    if (slot >= c->prepared_cap) {
        size_t cap = c->prepared_cap ? c->prepared_cap : 64;
        while (cap <= slot)
            cap *= 2;
        c->prepared = realloc(c->prepared, cap);
        c->prepared_serial = realloc(c->prepared_serial, cap * sizeof(*c->prepared_serial));
        if (!c->prepared || !c->prepared_serial)
            abort();
        memset(c->prepared + c->prepared_cap, 0, cap - c->prepared_cap);
        memset(c->prepared_serial + c->prepared_cap, 0,
               (cap - c->prepared_cap) * sizeof(*c->prepared_serial));
        c->prepared_cap = cap;
    }
    if (on == PREP_SENT) {
        const pgs_stmt_t *st = pgs_statements_get(c->pool->stmts, sid);
        c->prepared_serial[slot] = st ? st->serial : 0;
    }
    c->prepared[slot] = (unsigned char)on;
}

/* Statements this connection prepared that the registry has evicted (their
 * slot is empty or holds another serial) are deallocated first thing in the
 * pipeline, before BEGIN: DEALLOCATE is not transactional, so what follows
 * cannot undo it, and it runs before anything that could abort the pipeline.
 * Only confirmed ones are named, so none fails for want of the statement. */
static int deallocate_evicted(pgs_conn_t *c)
{
    pgs_stmts_t *stmts = c->pool->stmts;
    size_t stale = 0;
    for (size_t slot = 0; slot < c->prepared_cap; slot++)
        stale += c->prepared[slot] == PREP_DONE &&
                 c->prepared_serial[slot] != pgs_statements_slot_serial(stmts, slot);
    /* the expected list holds a whole transaction after the deallocations */
    int need = (int)stale + 4 * c->pool->max_batch + 8;
    if (need > c->exp_cap) {
        c->exp = realloc(c->exp, (size_t)need * sizeof(*c->exp));
        if (!c->exp)
            abort();
        c->exp_cap = need;
    }
    for (size_t slot = 0; slot < c->prepared_cap; slot++) {
        if (c->prepared[slot] == PREP_NONE ||
            c->prepared_serial[slot] == pgs_statements_slot_serial(stmts, slot))
            continue;
        if (c->prepared[slot] == PREP_DONE) {
            char sql[48] = "DEALLOCATE ";
            pgs_statements_name(c->prepared_serial[slot], sql + 11, sizeof(sql) - 11);
            if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
                return -1;
            pgs_txn_expect(c, R_DEALLOCATE, -1);
        }
        c->prepared[slot] = PREP_NONE;
        c->prepared_serial[slot] = 0;
    }
    return 0;
}

size_t pgs_pool_drop_catalog(pgs_pool_t *pool, const pgs_catalog_t *cat)
{
    return pool && !pool->audit ? pgs_statements_drop_catalog(pool->stmts, cat) : 0;
}

void pgs_txn_record_latency(pgs_conn_t *c, int64_t took)
{
    pgs_pool_t *pool = c->pool;
    if (pool->audit) {
        pgs_latency_record(&pool->audit_latency, took);
        return;
    }
    for (int g = 0; g < c->ngroups; g++) {
        pgs_stmt_t *st = pgs_statements_get(pool->stmts, c->group_stmt[g]);
        if (st)
            pgs_latency_record(&st->latency, took);
    }
    int last = -1;
    for (int i = 0; i < c->nbatch; i++) {
        int sid = c->batch[i]->stmt;
        pgs_stmt_t *st = pgs_statements_get(pool->stmts, sid);
        if (c->group_of[i] < 0 && sid != last && st)
            pgs_latency_record(&st->latency, took);
        last = sid;
    }
}

void pgs_txn_expect(pgs_conn_t *c, rkind_t kind, int idx)
{
    rexp_t *e = &c->exp[c->nexp++];
    e->kind = kind;
    e->idx = idx;
    e->multi = 0;
    e->stmt = -1;
    e->prof = -1;
    e->sent_us = 0;
}

/* The profile slot of a fixed statement, kept plus 1 in @p *slot. */
static int fixed_slot(pgs_pool_t *pool, int *slot, const char *what, int multi)
{
    if (!pool->profile)
        return -1;
    if (!*slot)
        *slot = pgs_profile_slot(pool->profile, pool->name, what, "INSERT", multi) + 1;
    return *slot - 1;
}

/* The profile slot of statement @p st, kept in the statement; NULL is the
 * audit statement, multi-row or (an isolated event) single. */
static int profile_slot(pgs_pool_t *pool, pgs_stmt_t *st, int multi)
{
    if (!pool->profile)
        return -1;
    if (!st)
        return fixed_slot(pool, &pool->audit_slot[multi], "audit_events", multi);
    if (!st->stats_slot)
        st->stats_slot = pgs_profile_slot(pool->profile, pool->name, st->bs.shape.ent->name,
                                          pgs_command_op_name(st->bs.shape.op), st->batch) +
                         1;
    return st->stats_slot - 1;
}

/* A statement's result is expected: its profile slot and send time go with it. */
static void expect_statement(pgs_conn_t *c, rkind_t kind, int idx, int slot)
{
    pgs_txn_expect(c, kind, idx);
    c->exp[c->nexp - 1].prof = slot;
    c->exp[c->nexp - 1].sent_us = pgs_clock_now_us();
}

/* Sends PREPARE for statement @p sid unless this connection has it. */
static int ensure_prepared(pgs_conn_t *c, int sid, int idx, int multi)
{
    if (conn_prep_state(c, sid) != PREP_NONE)
        return 0;
    pgs_stmt_t *st = pgs_statements_get(c->pool->stmts, sid);
    if (!PQsendPrepare(c->pg, st->name, st->sql, 0, NULL))
        return -1;
    pgs_txn_expect(c, R_PREPARE, idx);
    c->exp[c->nexp - 1].multi = multi;
    c->exp[c->nexp - 1].stmt = sid;
    pgs_txn_set_prepared(c, sid, PREP_SENT);
    return 0;
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
    const pgs_config_t *cfg = pool->cfg;
    int64_t max_us = pgs_config_int(cfg, "apply.statement_timeout_ms") * 1000;
    int64_t min_us = pgs_config_int(cfg, "apply.statement_timeout_min_ms") * 1000;
    int64_t lock_max_us = pgs_config_int(cfg, "apply.lock_timeout_ms") * 1000;
    double factor = pgs_config_double(cfg, "apply.timeout_factor");
    int64_t p99 = 0;
    if (pool->audit) {
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
        /* a multi-row statement touches each row once (ON CONFLICT cannot
         * update a row twice): the lanes never batch two commands of one
         * row, and should two ever share a lane the later one goes alone,
         * after the group, keeping their order */
        int same_row = 0;
        for (int j = 0; j < i && !same_row; j++)
            same_row = wk->lane.lane && c->batch[j]->lane.lane == wk->lane.lane;
        if (same_row)
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
    int min = (int)pgs_config_int(c->pool->cfg, "apply.multi_row_min");
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
    const pgs_command_t *cmds[TXN_MAX_BATCH];
    int32_t parts[TXN_MAX_BATCH];
    int64_t offs[TXN_MAX_BATCH];
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
        pgs_sqlbatch_params(&st->bs, cmds, parts, offs, n, pool->topic, &bp);
        int slot = profile_slot(pool, st, 1);
        if (pgs_profile_wants_sample(pool->profile, slot))
            pgs_profile_offer_sample(pool->profile, slot, st->sql,
                                     pgs_pool_work_clinic(c->batch[0]), bp.n,
                                     (const char *const *)bp.values, NULL, NULL);
        int ok = PQsendQueryPrepared(c->pg, st->name, bp.n, (const char *const *)bp.values, NULL,
                                     NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect_statement(c, R_MULTI, g, slot);
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
        pgs_sqlgen_params(&wk->shape, wk->cmd, pool->topic, wk->part->partition, wk->offset,
                          &params);
        if (ensure_prepared(c, wk->stmt, i, 0) != 0)
            return -1;
        int slot = profile_slot(pool, st, 0);
        if (pgs_profile_wants_sample(pool->profile, slot))
            pgs_profile_offer_sample(pool->profile, slot, st->sql, pgs_pool_work_clinic(wk),
                                     params.n, params.values, params.lengths, params.formats);
        if (!PQsendQueryPrepared(c->pg, st->name, params.n, params.values, params.lengths,
                                 params.formats, 0))
            return -1;
        expect_statement(c, R_CMD, i, slot);
    }
    return 0;
}

/* The write audit of every command of the transaction, one statement after
 * the writes: the database appends a row for each command whose idempotency
 * record this transaction inserted, so duplicates are left out. */
static int send_write_audit(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    static pgs_txnaudit_row_t rows[TXN_MAX_BATCH];
    for (int i = 0; i < c->nbatch; i++) {
        pgs_work_t *wk = c->batch[i];
        rows[i] = (pgs_txnaudit_row_t){wk->cmd, &wk->shape, wk->part->partition, wk->offset};
    }
    pgs_batch_params_t bp;
    pgs_txnaudit_params(rows, (size_t)c->nbatch, pool->topic, &bp);
    int slot = fixed_slot(pool, &pool->write_audit_slot, "write_audit", 1);
    int ok = PQsendQueryPrepared(c->pg, PGS_TXNAUDIT_NAME, bp.n, (const char *const *)bp.values,
                                 NULL, NULL, 0);
    pgs_sqlbatch_params_free(&bp);
    if (!ok)
        return -1;
    expect_statement(c, R_WRITE_AUDIT, -1, slot);
    return 0;
}

/* Audit events: one multi-row INSERT for the batch (group 0); an isolated
 * event (its batch failed) goes in a statement of its own. */
static int send_audit(pgs_conn_t *c)
{
    pgs_pool_t *pool = c->pool;
    const pgs_audit_event_t *evs[TXN_MAX_BATCH];
    int32_t parts[TXN_MAX_BATCH];
    int64_t offs[TXN_MAX_BATCH];
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
        pgs_auditsql_params(evs, parts, offs, n, pool->topic, &bp);
        int ok = PQsendQueryPrepared(c->pg, PGS_AUDITSQL_NAME, bp.n, (const char *const *)bp.values,
                                     NULL, NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect_statement(c, R_MULTI, 0, profile_slot(pool, NULL, 1));
    }
    for (int i = 0; i < c->nbatch; i++) {
        if (c->group_of[i] >= 0)
            continue;
        pgs_work_t *wk = c->batch[i];
        const pgs_audit_event_t *one = wk->audit;
        pgs_auditsql_params(&one, &wk->part->partition, &wk->offset, 1, pool->topic, &bp);
        int ok = PQsendQueryPrepared(c->pg, PGS_AUDITSQL_NAME, bp.n, (const char *const *)bp.values,
                                     NULL, NULL, 0);
        pgs_sqlbatch_params_free(&bp);
        if (!ok)
            return -1;
        expect_statement(c, R_CMD, i, profile_slot(pool, NULL, 0));
    }
    return 0;
}

int pgs_txn_one_clinic(pgs_work_t *const *works, int n)
{
    const char *clinic = pgs_pool_work_clinic(works[0]);
    for (int i = 1; i < n; i++) {
        if (strcmp(pgs_pool_work_clinic(works[i]), clinic) != 0)
            return i;
    }
    return n;
}

int pgs_txn_start(pgs_conn_t *c, pgs_work_t **works, int n)
{
    pgs_pool_t *pool = c->pool;
    /* The wall's second check, after the lanes': the tenant of a transaction
     * is one clinic, set once, so a batch of two is never sent. */
    if (pgs_txn_one_clinic(works, n) != n)
        return PGS_TXN_MIXED_CLINICS;
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
    const char *clinic = pgs_pool_work_clinic(works[0]);
    if (!pool->audit) {
        pgs_statements_epoch(pool->stmts);
        for (int i = 0; i < n; i++)
            work_statements(pool, works[i]);
        group_batch(c);
        single_statements(c);
    }

    if (!pool->audit && deallocate_evicted(c) != 0)
        return -1;
    if (!PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    pgs_txn_expect(c, R_BEGIN, -1);
    char stmt_ms[24], lock_ms[24];
    txn_timeouts(c, stmt_ms, lock_ms);
    /* each record's resume floor (an idempotency record, an audit event
     * id): its partition's offset below which every message was final as
     * this transaction begins (floors.h) */
    static char floors_text[TXN_MAX_BATCH * 24 + 64];
    int32_t parts[TXN_MAX_BATCH];
    int64_t floors[TXN_MAX_BATCH];
    int nf = 0;
    for (int i = 0; i < n && nf < TXN_MAX_BATCH; i++, nf++) {
        parts[nf] = works[i]->part->partition;
        floors[nf] = works[i]->part->offsets ? pgs_offsets_position(works[i]->part->offsets) : -1;
    }
    pgs_floors_format(pool->identity, parts, floors, nf, floors_text, sizeof(floors_text));
    const char *setup[4] = {clinic, stmt_ms, lock_ms, floors_text};
    if (!PQsendQueryPrepared(c->pg, "pgs_txn_setup", 4, setup, NULL, NULL, 0))
        return -1;
    pgs_txn_expect(c, R_CLINIC, -1);
    if (pool->audit ? send_audit(c) != 0
                    : send_groups(c) != 0 || send_singles(c) != 0 || send_write_audit(c) != 0)
        return -1;
    if (!PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    pgs_txn_expect(c, R_COMMIT, -1);
    if (!PQpipelineSync(c->pg))
        return -1;
    pgs_txn_expect(c, R_SYNC, -1);
    c->state = C_BUSY;
    pgs_pool_conn_flush(c);
    return 0;
}
