/* Intake: each consumed message is decoded, validated against the catalog
 * and queued in its key lane; a message that cannot be applied goes
 * straight to the dead-letter topic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "catalog/fieldseal.h"
#include "codec/codec.h"
#include "sql/sqlgen.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/sbuf.h"
#include "common/traceparent.h"
#include "run/consume.h"
#include "run/dlq.h"
#include "run/fair.h"
#include "run/intake.h"
#include "run/keys.h"
#include "run/lanekey.h"
#include "run/schemawait.h"
#include "run/trace.h"
#include "run/worker.h"

/* Reads what the headers say: the content type (the answer) and the
 * trace context (into the work). */
static int is_json_message(pgs_work_t *work)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(work->rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    work->traced = pgs_codec_headers_traceparent(hdrs, &work->trace) == 0;
    return pgs_codec_headers_content_type(hdrs) == PGS_CONTENT_JSON;
}

/* The work's trace context as text, kept in @p arena for the audit trail;
 * NULL for a message that carried none. */
static const char *trace_text(const pgs_work_t *work, pgs_arena_t *arena)
{
    if (!work->traced)
        return NULL;
    char buf[PGS_TRACEPARENT_LEN + 1];
    pgs_traceparent_format(&work->trace, buf);
    return pgs_arena_strndup(arena, buf, strlen(buf));
}

int pgs_intake_key_names_other_clinic(const void *key, size_t key_len, const char *clinic_id,
                                      int audit)
{
    if (!key || key_len == 0)
        return 0; /* nothing named: the key only chose the partition */
    const char *k = key;
    size_t n = strlen(clinic_id);
    /* the clinic part is compared as the whole prefix, not cut at the first
     * '/': a clinic id may itself hold a '/' */
    int prefixed = key_len > n && memcmp(k, clinic_id, n) == 0 && k[n] == '/';
    if (audit)
        return !(prefixed || (key_len == n && memcmp(k, clinic_id, n) == 0));
    if (!memchr(k, '/', key_len))
        return 0; /* not the contract's clinic_id/entity/key form: names no clinic */
    return !prefixed;
}

/* A message whose Kafka key names another clinic than its body is refused
 * before anything else looks at it: a producer (or gateway) that routed it
 * as clinic A's must not get it written as clinic B's. The reason names
 * neither clinic. */
static int key_crosses_wall(pgs_worker_t *w, pgs_work_t *work, const char *clinic_id, int audit)
{
    const rd_kafka_message_t *rkm = work->rkm;
    if (!pgs_intake_key_names_other_clinic(rkm->key, rkm->key_len, clinic_id, audit))
        return 0;
    /* loud: a producer or gateway mixed up clinics; the line names the
     * position only, never a clinic or the key (it may hold PHI) */
    pgs_warn("intake",
             "tenant violation: %s at partition=%d offset=%lld has a message key naming "
             "another clinic than its body",
             audit ? "audit event" : "command", (int)rkm->partition, (long long)rkm->offset);
    pgs_dlq_send(w, work, PGS_E_TENANT_KEY_MISMATCH, NULL,
                 audit ? "message key names another clinic than the event's clinic_id"
                       : "message key names another clinic than the command's clinic_id");
    return 1;
}

/* The lane key of the message being taken in: one buffer, reused (intake
 * runs on the main thread only). */
static pgs_sbuf_t lane_key;

/* The entity of a command that names a data column its catalog does not
 * know, when the command can wait for a refreshed catalog: the entity and
 * every key column are known (its lane is the one it will have), only a
 * data column is new — what an expand migration adds. NULL otherwise. */
static const pgs_entity_t *entity_to_wait_for(const pgs_catalog_t *cat, const pgs_command_t *cmd)
{
    const pgs_entity_t *ent = pgs_catalog_find(cat, cmd->entity ? cmd->entity : "");
    if (!ent)
        return NULL;
    for (size_t i = 0; i < cmd->key_cnt; i++)
        if (strcmp(cmd->key[i].name, "clinic_id") != 0 &&
            pgs_catalog_entity_column(ent, cmd->key[i].name) < 0)
            return NULL;
    return ent;
}

int pgs_intake_seal(pgs_worker_t *w, pgs_work_t *work)
{
    if (!work->ent || !pgs_catalog_entity_has_sealed(work->ent))
        return 0;
    char errstr[256] = "";
    pgs_err_t err = pgs_fieldseal_command(pgs_keys_ring(w), pgs_catalog_schema(work->cat),
                                          work->ent, work->cmd, errstr, sizeof(errstr));
    if (err == PGS_OK)
        return 0;
    pgs_dlq_send(w, work, err, NULL, errstr);
    return -1;
}

/* An audit event: decoded, then queued for its clinic's next batch. */
static void intake_audit(pgs_worker_t *w, pgs_stream_t *st, pgs_work_t *work)
{
    char errstr[256] = "";
    rd_kafka_message_t *rkm = work->rkm;
    pgs_err_t err = pgs_codec_decode_audit(w->codec, rkm->payload, rkm->len, is_json_message(work),
                                           &work->audit, errstr, sizeof(errstr));
    if (err == PGS_OK && !pgs_command_clinic_id_valid(work->audit->clinic_id)) {
        err = PGS_E_VALIDATE_BAD_CLINIC_ID;
        snprintf(errstr, sizeof(errstr),
                 "clinic_id must be 1 to %d bytes without control characters (%zu bytes)",
                 PGS_CLINIC_ID_MAX, strlen(work->audit->clinic_id));
    }
    if (err == PGS_E_REGISTRY_UNAVAILABLE) {
        pgs_schemawait_hold(w, work, errstr);
        return;
    }
    if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    }
    if (key_crosses_wall(w, work, work->audit->clinic_id, 1))
        return;
    work->audit->traceparent = trace_text(work, work->audit->arena);
    /* every event is a lane of its own (an event is stored once, never
     * updated): a clinic's events are all ready together and go to the
     * database in batches of audit.max_batch */
    pgs_lanekey_audit(&lane_key, work->audit);
    work->in_lane = 1;
    work->state = PGS_WORK_QUEUED;
    pgs_lanes_push(st->lanes, &work->lane, work->audit->clinic_id, lane_key.buf, lane_key.len);
}

static void intake_work(pgs_worker_t *w, pgs_stream_t *st, pgs_work_t *work);

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
    if (!part->assigned || part->revoking || pgs_offsets_track(part->offsets, rkm->offset) != 0) {
        /* not ours any more (or being given up), or an offset we already
         * hold: the owner of the partition (or the copy in flight) takes
         * care of it */
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
    if (st->kind == PGS_STREAM_COMMANDS) {
        w->ctr.consumed++;
        w->ctr.total_consumed++;
    }
    if (pgs_schemawait_holding(part)) {
        /* an earlier message of the partition waits for the registry:
         * this one waits behind it, undecoded, so key order holds */
        pgs_schemawait_hold(w, work, NULL);
        return;
    }
    intake_work(w, st, work);
}

void pgs_intake_retry(pgs_worker_t *w, pgs_work_t *work)
{
    intake_work(w, work->part->stream, work);
}

/* Decodes, validates and queues one work (or holds or dead-letters it). */
static void intake_work(pgs_worker_t *w, pgs_stream_t *st, pgs_work_t *work)
{
    char errstr[256] = "";
    rd_kafka_message_t *rkm = work->rkm;
    if (st->kind == PGS_STREAM_AUDIT) {
        intake_audit(w, st, work);
        return;
    }
    int64_t consumed_ns = pgs_clock_wall_ns();
    pgs_err_t err =
        pgs_codec_decode_command(w->codec, rkm->payload, rkm->len, is_json_message(work),
                                 &work->cmd, errstr, sizeof(errstr));
    if (err == PGS_E_REGISTRY_UNAVAILABLE) {
        pgs_schemawait_hold(w, work, errstr);
        return;
    }
    /* its process span, when sampled: a command that cannot be decoded has
     * one too, ending with its dead letter */
    pgs_trace_begin(w->tracer, work, consumed_ns);
    if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    }
    work->cmd->traceparent = trace_text(work, work->cmd->arena);
    /* (an invalid clinic_id is refused by validation, with its own code) */
    if (pgs_command_clinic_id_valid(work->cmd->clinic_id) &&
        key_crosses_wall(w, work, work->cmd->clinic_id, 0))
        return;
    work->cat = pgs_catalog_ref(w->catalog);
    err = pgs_catalog_validate(work->cat, work->cmd, &work->ent, errstr, sizeof(errstr));
    if (err == PGS_OK && pgs_sqlgen_shape_of(work->ent, work->cmd, &work->shape) != 0) {
        err = PGS_E_VALIDATE_UNEXPECTED_DATA;
        snprintf(errstr, sizeof(errstr), "too many data columns for %s", work->cmd->entity);
    }
    int64_t grace_us = 0; /* looked up only for such a command, not for every message */
    if (err == PGS_E_VALIDATE_UNKNOWN_COLUMN &&
        (grace_us = pgs_config_int(w->cfg, "catalog.unknown_column_grace_ms") * 1000) > 0 &&
        (work->ent = entity_to_wait_for(work->cat, work->cmd)) != NULL) {
        /* a column added to the schema a moment ago: the command waits in its
         * lane (holding back its key only) for a refreshed catalog */
        work->catalog_wait_until_us = pgs_clock_now_us() + grace_us;
        pgs_info("catalog",
                 "command at partition=%d offset=%lld names a column the catalog does not "
                 "know: refreshing the catalog, waiting up to %lld ms",
                 (int)rkm->partition, (long long)rkm->offset, (long long)(grace_us / 1000));
        pgs_worker_catalog_kick(w);
    } else if (err != PGS_OK) {
        pgs_dlq_send(w, work, err, NULL, errstr);
        return;
    } else if (pgs_intake_seal(w, work) != 0) {
        return;
    }
    pgs_lanekey_command(&lane_key, work->cmd, work->ent);
    work->in_lane = 1;
    work->state = PGS_WORK_QUEUED;
    if (pgs_fair_over_limit(w->limits, st->lanes, work->cmd->clinic_id)) {
        work->over_limit = 1;
        work->part->over_limit++;
    }
    pgs_lanes_push(st->lanes, &work->lane, work->cmd->clinic_id, lane_key.buf, lane_key.len);
}
