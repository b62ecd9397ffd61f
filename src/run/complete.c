/* Complete: a finished command releases its lane and its offset; only the
 * contiguous completed prefix of a partition is ever stored. */
#include <stdlib.h>
#include <string.h>

#include "run/complete.h"
#include "run/worker.h"

/* @locality main thread; also librdkafka callback (pgs_dlq_delivery_cb) */
void pgs_complete_work_free(pgs_worker_t *w, pgs_work_t *work)
{
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
    pgs_complete_work_free(w, work);
}

void pgs_complete_count_applied(pgs_worker_t *w, const char *clinic_id, int64_t applied,
                                int64_t db_time_us)
{
    pgs_clinic_counter_t *c = w->ctr.clinics;
    for (; c; c = c->next) {
        if (strcmp(c->clinic_id, clinic_id) == 0)
            break;
    }
    if (!c) {
        c = calloc(1, sizeof(*c));
        c->clinic_id = strdup(clinic_id);
        c->next = w->ctr.clinics;
        w->ctr.clinics = c;
    }
    c->applied += applied;
    c->db_time_us += db_time_us;
}
