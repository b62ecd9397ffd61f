/* Outcome: the worker's side of the apply pool's callbacks. A committed
 * transaction moves the interval counters and completes its works; a work
 * that cannot be applied becomes a dead letter; connection sockets join the
 * worker's one epoll set. */
#include <stdio.h>
#include <sys/epoll.h>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/log.h"
#include "sql/sqlgen.h"

#include "run/complete.h"
#include "run/dlq.h"
#include "run/intake.h"
#include "run/outcome.h"
#include "run/trace.h"
#include "run/worker.h"

static int outcome_watch(void *opaque, int fd, uint32_t events, void *tag, pgs_pool_watch_t op)
{
    pgs_worker_t *w = opaque;
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    int eop = op == PGS_POOL_WATCH_ADD   ? EPOLL_CTL_ADD
              : op == PGS_POOL_WATCH_MOD ? EPOLL_CTL_MOD
                                         : EPOLL_CTL_DEL;
    return epoll_ctl(w->epfd, eop, fd, op == PGS_POOL_WATCH_DEL ? NULL : &ev);
}

/* The value bytes of a transaction's newly applied commands. The pool
 * reports how many of its commands were fresh, not which (a multi-row
 * statement returns a count), so a transaction that mixes applied and
 * duplicate commands, a rare one, is counted in proportion. */
static int64_t applied_bytes(pgs_work_t **works, int n, int fresh)
{
    if (fresh <= 0 || n <= 0)
        return 0;
    int64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (works[i]->cmd)
            bytes += pgs_command_value_bytes(works[i]->cmd);
    }
    return fresh >= n ? bytes : bytes * fresh / n;
}

static void outcome_applied(void *opaque, pgs_work_t **works, int n, int fresh, int64_t took_us,
                            const char *clinic_id)
{
    pgs_worker_t *w = opaque;
    pgs_stream_t *stream = works[0]->part->stream;
    if (stream->kind == PGS_STREAM_AUDIT) {
        stream->stored += fresh;
        stream->duplicates += n - fresh;
    } else {
        pgs_hist_record(&w->ctr.commit_latency, (uint64_t)took_us);
        pgs_hist_record(&w->ctr.total_commit_latency, (uint64_t)took_us);
        w->ctr.transactions++;
        pgs_complete_count_applied(w, clinic_id, fresh, applied_bytes(works, n, fresh), took_us);
        w->ctr.applied += fresh;
        w->ctr.total_applied += fresh;
        w->ctr.duplicates += n - fresh;
        w->ctr.total_duplicates += n - fresh;
    }
    for (int i = 0; i < n; i++)
        pgs_complete_work(w, works[i]);
}

static void outcome_retried(void *opaque, pgs_work_t *work, const char *code, int64_t delay_us)
{
    pgs_worker_t *w = opaque;
    w->ctr.retried++;
    pgs_trace_retry(w->tracer, work, code, delay_us);
}

static void outcome_settled(void *opaque, pgs_work_t *const *works, int n, int64_t took_us,
                            const char *code, const char *msg)
{
    pgs_worker_t *w = opaque;
    pgs_trace_transaction(w->tracer, works, n, took_us, code, msg);
}

static void outcome_dead_letter(void *opaque, pgs_work_t *work, pgs_err_t err, const char *code,
                                const char *msg)
{
    pgs_dlq_send(opaque, work, err, code, msg);
}

/* A command that named a column its catalog did not know is validated again
 * against the newest catalog (a refresh was started when it arrived, and
 * the periodic one goes on): it goes on with the catalog that knows the
 * column, waits while catalog.unknown_column_grace_ms is not over, or is
 * dead-lettered with what validation says now. */
static int outcome_revalidate(void *opaque, pgs_work_t *work)
{
    pgs_worker_t *w = opaque;
    char errstr[256] = "";
    const pgs_entity_t *ent = NULL;
    pgs_err_t err = PGS_OK;
    if (work->cat != w->catalog) {
        err = pgs_catalog_validate(w->catalog, work->cmd, &ent, errstr, sizeof(errstr));
        if (err == PGS_OK) {
            pgs_shape_t shape;
            if (pgs_sqlgen_shape_of(ent, work->cmd, &shape) != 0) {
                err = PGS_E_VALIDATE_UNEXPECTED_DATA;
                snprintf(errstr, sizeof(errstr), "too many data columns for %s", work->cmd->entity);
            } else {
                pgs_catalog_unref(work->cat);
                work->cat = pgs_catalog_ref(w->catalog);
                work->ent = ent;
                work->shape = shape;
                work->catalog_wait_until_us = 0;
                if (pgs_intake_seal(w, work) != 0)
                    return -1;
                pgs_info("catalog",
                         "command at partition=%d offset=%lld goes on: the refreshed catalog "
                         "knows its columns",
                         (int)work->part->partition, (long long)work->offset);
                return 0;
            }
        }
        if (err != PGS_E_VALIDATE_UNKNOWN_COLUMN) {
            work->catalog_wait_until_us = 0;
            pgs_dlq_send(w, work, err, NULL, errstr);
            return -1;
        }
    }
    if (pgs_clock_now_us() < work->catalog_wait_until_us) {
        pgs_worker_catalog_kick(w);
        return 1;
    }
    if (!errstr[0])
        (void)pgs_catalog_validate(work->cat, work->cmd, &ent, errstr, sizeof(errstr));
    work->catalog_wait_until_us = 0;
    pgs_warn("catalog",
             "command at partition=%d offset=%lld still names an unknown column after "
             "catalog.unknown_column_grace_ms: dead-lettered",
             (int)work->part->partition, (long long)work->offset);
    pgs_dlq_send(w, work, PGS_E_VALIDATE_UNKNOWN_COLUMN, NULL, errstr);
    return -1;
}

const pgs_pool_ops_t pgs_outcome_ops = {
    .revalidate = outcome_revalidate,
    .watch = outcome_watch,
    .applied = outcome_applied,
    .retried = outcome_retried,
    .settled = outcome_settled,
    .dead_letter = outcome_dead_letter,
};
