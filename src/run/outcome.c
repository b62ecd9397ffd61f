/* Outcome: the worker's side of the apply pool's callbacks. A committed
 * transaction moves the interval counters and completes its works; a work
 * that cannot be applied becomes a dead letter; connection sockets join the
 * worker's one epoll set. */
#include <sys/epoll.h>

#include "run/complete.h"
#include "run/dlq.h"
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
        pgs_complete_count_applied(w, clinic_id, fresh, took_us);
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

const pgs_pool_ops_t pgs_outcome_ops = {
    .watch = outcome_watch,
    .applied = outcome_applied,
    .retried = outcome_retried,
    .settled = outcome_settled,
    .dead_letter = outcome_dead_letter,
};
