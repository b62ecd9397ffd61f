/* Complete: a finished command releases its lane and its offset; only the
 * contiguous completed prefix of a partition is ever stored. */
#include <stdlib.h>
#include <string.h>

#include "run/complete.h"
#include "run/trace.h"
#include "run/worker.h"

/* @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb) */
void pgs_complete_work_free(pgs_worker_t *w, pgs_work_t *work)
{
    pgs_trace_discard(work); /* (a completed work's spans have ended already) */
    if (work->rkm)
        rd_kafka_message_destroy(work->rkm);
    pgs_command_free(work->cmd);
    pgs_command_audit_free(work->audit);
    if (work->cat)
        pgs_catalog_unref(work->cat);
    work->part->stream->live--;
    free(work->errmsg);
    if (work->part->outstanding > 0)
        work->part->outstanding--;
    if (work->over_limit && work->part->over_limit > 0)
        work->part->over_limit--;
    w->works_live--;
    free(work);
}

/* @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb) */
void pgs_complete_work(pgs_worker_t *w, pgs_work_t *work)
{
    pgs_partition_t *part = work->part;
    if (work->in_lane)
        pgs_lanes_complete(part->stream->lanes, &work->lane);
    /* A work consumed under an earlier assignment of this partition is still
     * applied (or dead-lettered), but its offset belongs to a tracker that is
     * gone: the new owner's tracker must not be moved by it. */
    if (part->assigned && work->generation == part->generation) {
        pgs_offsets_done(part->offsets, work->offset);
        part->dirty = 1;
    }
    pgs_trace_end(w->tracer, work);
    pgs_complete_work_free(w, work);
}

/* The interval counters of @p clinic_id, made on first use. */
static pgs_clinic_counter_t *clinic_counter(pgs_worker_t *w, const char *clinic_id)
{
    pgs_clinic_counter_t *c = w->ctr.clinics;
    for (; c; c = c->next) {
        if (strcmp(c->clinic_id, clinic_id) == 0)
            return c;
    }
    c = calloc(1, sizeof(*c));
    c->clinic_id = strdup(clinic_id);
    if (!c->clinic_id)
        abort();
    c->next = w->ctr.clinics;
    w->ctr.clinics = c;
    return c;
}

void pgs_complete_count_applied(pgs_worker_t *w, const char *clinic_id, int64_t applied,
                                int64_t bytes, int64_t db_time_us)
{
    pgs_clinic_counter_t *c = clinic_counter(w, clinic_id);
    c->applied += applied;
    /* an applied command writes exactly one row of its table: an UPDATE or
     * DELETE that finds none is a dead letter (PS001), never applied */
    c->rows_written += applied;
    c->bytes_written += bytes;
    c->db_time_us += db_time_us;
}

/* @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb) */
void pgs_complete_count_dead_letter(pgs_worker_t *w, const pgs_work_t *work)
{
    if (work->part->stream->kind == PGS_STREAM_COMMANDS) {
        w->ctr.dead_lettered++;
        w->ctr.total_dead_lettered++;
    }
    pgs_eclass_t klass = pgs_error_class(work->err);
    if ((unsigned)klass < 8)
        w->ctr.dead_letters_by_class[work->part->stream->kind == PGS_STREAM_AUDIT][klass]++;
    if (klass != PGS_ECLASS_TENANT)
        return;
    w->ctr.tenant_violations++;
    /* a tenant error is found only after the body decoded, so its clinic
     * (the one the message claimed to be) is known: the clinic whose
     * producer or gateway sent it is the one the count is kept under */
    const char *clinic_id = work->cmd     ? work->cmd->clinic_id
                            : work->audit ? work->audit->clinic_id
                                          : NULL;
    if (clinic_id)
        clinic_counter(w, clinic_id)->tenant_violations++;
}
