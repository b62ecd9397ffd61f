/* Intake: each consumed message is decoded, validated against the catalog
 * and queued in its key lane; a message that cannot be applied goes
 * straight to the dead-letter topic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "run/worker.h"

static int is_json_message(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs)
        return 0;
    const void *val = NULL;
    size_t size = 0;
    if (rd_kafka_header_get_last(hdrs, "content-type", &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val)
        return 0;
    static const char json[] = "application/json";
    return size >= sizeof(json) - 1 && memcmp(val, json, sizeof(json) - 1) == 0;
}

/* Appends one key value's text form to the lane key. */
static size_t lane_key_value(char *buf, size_t off, size_t cap, const pgs_value_t *v)
{
    char num[32];
    const char *p = num;
    size_t len;
    switch (v->type) {
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        p = v->u.s.ptr;
        len = v->u.s.len;
        break;
    case PGS_VAL_LONG:
        len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)v->u.l);
        break;
    case PGS_VAL_DOUBLE:
        len = (size_t)snprintf(num, sizeof(num), "%.17g", v->u.d);
        break;
    case PGS_VAL_BOOL:
        len = (size_t)snprintf(num, sizeof(num), "%s", v->u.b ? "t" : "f");
        break;
    default:
        len = 0;
        break;
    }
    if (off + len + 1 > cap)
        len = off + 1 < cap ? cap - off - 1 : 0;
    memcpy(buf + off, p, len);
    off += len;
    if (off < cap)
        buf[off++] = '\x1f';
    return off;
}

/* The lane key: clinic, entity, then the primary key values in the
 * entity's key order, so the same row always maps to the same lane. */
static size_t lane_key(const pgs_command_t *cmd, const pgs_entity_t *ent, char *buf, size_t cap)
{
    size_t off = 0;
    pgs_value_t s = {.type = PGS_VAL_STRING};
    s.u.s.ptr = cmd->clinic_id;
    s.u.s.len = strlen(cmd->clinic_id);
    off = lane_key_value(buf, off, cap, &s);
    s.u.s.ptr = ent->name;
    s.u.s.len = strlen(ent->name);
    off = lane_key_value(buf, off, cap, &s);
    for (int i = 0; i < ent->npk; i++) {
        const char *col = ent->cols[ent->pk[i]].name;
        for (size_t k = 0; k < cmd->key_cnt; k++) {
            if (strcmp(cmd->key[k].name, col) == 0) {
                off = lane_key_value(buf, off, cap, &cmd->key[k].value);
                break;
            }
        }
    }
    return off;
}

/* An audit event: decoded, then queued for its clinic's next batch. */
static void intake_audit(pgs_worker_t *w, pgs_stream_t *st, pgs_work_t *work)
{
    char errstr[256] = "";
    rd_kafka_message_t *rkm = work->rkm;
    pgs_err_t err = pgs_codec_decode_audit(w->codec, rkm->payload, rkm->len, is_json_message(rkm),
                                           &work->audit, errstr, sizeof(errstr));
    if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    }
    /* every event is a lane of its own (an event is stored once, never
     * updated): a clinic's events are all ready together and go to the
     * database in batches of audit.max_batch */
    const char *event_id = work->audit->event_id;
    work->in_lane = 1;
    work->state = PGS_WORK_QUEUED;
    pgs_lanes_push(st->lanes, &work->lane, work->audit->clinic_id, event_id, strlen(event_id));
}

void pgs_intake_message(pgs_worker_t *w, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pgs_warn("consume", "consumer error: %s", rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return;
    }
    pgs_stream_t *st = pgs_consume_stream_of_topic(w, rd_kafka_topic_name(rkm->rkt));
    if (!st) {
        rd_kafka_message_destroy(rkm);
        return;
    }
    pgs_partition_t *part = pgs_consume_partition_get(st, rkm->partition);
    if (!part->assigned || pgs_offsets_track(part->offsets, rkm->offset) != 0) {
        /* not ours any more, or an offset we already hold: the owner of the
         * partition (or the copy in flight) takes care of it */
        rd_kafka_message_destroy(rkm);
        return;
    }
    pgs_work_t *work = calloc(1, sizeof(*work));
    work->part = part;
    work->offset = rkm->offset;
    work->rkm = rkm;
    work->generation = part->generation;
    part->outstanding++;
    st->live++;
    w->works_live++;
    char errstr[256] = "";
    if (st->kind == PGS_STREAM_AUDIT) {
        intake_audit(w, st, work);
        return;
    }
    w->ctr.consumed++;
    w->ctr.total_consumed++;

    pgs_err_t err = pgs_codec_decode_command(w->codec, rkm->payload, rkm->len, is_json_message(rkm),
                                             &work->cmd, errstr, sizeof(errstr));
    if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    }
    err = pgs_catalog_validate(w->catalog, work->cmd, &work->ent, errstr, sizeof(errstr));
    if (err == PGS_OK && pgs_sqlgen_shape_of(work->ent, work->cmd, &work->shape) != 0) {
        err = PGS_E_VALIDATE_UNEXPECTED_DATA;
        snprintf(errstr, sizeof(errstr), "too many data columns for %s", work->cmd->entity);
    }
    if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    }
    char key[1024];
    size_t key_len = lane_key(work->cmd, work->ent, key, sizeof(key));
    work->in_lane = 1;
    work->state = PGS_WORK_QUEUED;
    pgs_lanes_push(st->lanes, &work->lane, work->cmd->clinic_id, key, key_len);
}
