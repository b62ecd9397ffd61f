/* Dead letters: the original key and value, the content-type and traceparent
 * headers, plus pgscribe.* headers, produced idempotently with acks=all; the
 * offset of a dead letter counts as done only once the broker has
 * acknowledged it. With a field key in the keyring the value is sealed
 * (common/dlqseal.h); other producer headers are dropped, since pgscribe
 * cannot tell whether they carry PHI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/dlqseal.h"
#include "common/log.h"
#include "codec/command.h"
#include "policy/error.h"
#include "policy/retryq.h"
#include "run/complete.h"
#include "run/dlq.h"
#include "run/keys.h"
#include "run/reach.h"
#include "run/trace.h"
#include "run/worker.h"

/* a refused dead letter is produced again after 100 ms .. 10 s (full jitter) */
#define DLQ_RETRY_INITIAL_US 100000
#define DLQ_RETRY_MAX_US     10000000

/* @locality main thread */
static void rfc3339_now(char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* @locality main thread */
static void hdr_add(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

/* The producer headers a dead letter keeps: the content type (needed to
 * decode it again) and the trace context (random ids). */
static int dlq_keeps_header(const char *name)
{
    return name && (strcasecmp(name, "content-type") == 0 || strcasecmp(name, "traceparent") == 0);
}

/* The clinic of a decoded message, "" when it is unknown or no valid clinic
 * id (an invalid one could be anything, a name included). */
static const char *dlq_clinic(const pgs_work_t *work)
{
    const char *c = NULL;
    if (work->cmd)
        c = work->cmd->clinic_id;
    else if (work->audit)
        c = work->audit->clinic_id;
    return c && pgs_command_clinic_id_valid(c) ? c : "";
}

static const char *dlq_command_id(const pgs_work_t *work)
{
    if (work->cmd && work->cmd->command_id)
        return work->cmd->command_id;
    if (work->audit && work->audit->event_id)
        return work->audit->event_id;
    return NULL;
}

/* Produces the dead letter of @p work (again, after a refusal), or records
 * it for a retry; it never polls, so it is safe wherever a work completes.
 * @locality main thread */
static void dlq_produce(pgs_worker_t *w, pgs_work_t *work, int omit_value)
{
    rd_kafka_message_t *rkm = work->rkm;
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(16);
    if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &val, &len) == 0; i++)
            if (dlq_keeps_header(name))
                rd_kafka_header_add(hdrs, name, -1, val, val ? (ssize_t)len : 0);
    }
    char num[32], when[40];
    const char *clinic = dlq_clinic(work);
    const char *command_id = dlq_command_id(work);
    hdr_add(hdrs, "pgscribe.clinic", clinic);
    if (command_id)
        hdr_add(hdrs, "pgscribe.command_id", command_id);
    hdr_add(hdrs, "pgscribe.error.class", pgs_error_class_name(pgs_error_class(work->err)));
    hdr_add(hdrs, "pgscribe.error.code", work->errcode);
    hdr_add(hdrs, "pgscribe.error.message", work->errmsg ? work->errmsg : "");
    hdr_add(hdrs, "pgscribe.source.topic", work->part->stream->topic);
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    hdr_add(hdrs, "pgscribe.source.partition", num);
    snprintf(num, sizeof(num), "%lld", (long long)rkm->offset);
    hdr_add(hdrs, "pgscribe.source.offset", num);
    snprintf(num, sizeof(num), "%d", work->attempts);
    hdr_add(hdrs, "pgscribe.attempts", num);
    hdr_add(hdrs, "pgscribe.worker", w->worker_id);
    rfc3339_now(when, sizeof(when));
    hdr_add(hdrs, "pgscribe.failed_at", when);
    if (omit_value) {
        /* larger than the broker accepts: the dead letter keeps the reason and
         * the source position; the value stays readable at that offset */
        snprintf(num, sizeof(num), "%zu", rkm->len);
        hdr_add(hdrs, "pgscribe.value_omitted_bytes", num);
    }
    unsigned char *sealed = NULL;
    size_t sealed_len = 0;
    if (!omit_value) {
        uint32_t key_id =
            pgs_dlq_seal(pgs_keys_ring(w), clinic, work->part->stream->topic, rkm->partition,
                         rkm->offset, rkm->payload, rkm->len, &sealed, &sealed_len);
        if (key_id) {
            hdr_add(hdrs, PGS_DLQ_HDR_ENC, PGS_DLQ_ENC_V1);
            snprintf(num, sizeof(num), "%u", key_id);
            hdr_add(hdrs, PGS_DLQ_HDR_KEY_ID, num);
        } else if (pgs_dlq_seal_key(pgs_keys_ring(w), clinic)) {
            /* a key but no envelope: the value is not sent in clear */
            pgs_warn("dlq", "cannot seal dead letter for partition %d offset %lld; value omitted",
                     (int)rkm->partition, (long long)rkm->offset);
            snprintf(num, sizeof(num), "%zu", rkm->len);
            hdr_add(hdrs, "pgscribe.value_omitted_bytes", num);
            omit_value = 1;
        }
    }
    const void *value = omit_value ? NULL : sealed ? sealed : rkm->payload;
    size_t value_len = omit_value ? 0 : sealed ? sealed_len : rkm->len;

    rd_kafka_resp_err_t err = rd_kafka_producev(
        w->producer, RD_KAFKA_V_TOPIC(work->part->stream->dlq_topic),
        RD_KAFKA_V_KEY(rkm->key, rkm->key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(work),
        RD_KAFKA_V_END);
    free(sealed); /* copied (RD_KAFKA_MSG_F_COPY) */
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return; /* headers now belong to librdkafka */
    rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !omit_value) {
        dlq_produce(w, work, 1);
        return;
    }
    /* a full queue or a refusal: the main loop tries again after a backoff
     * (pgs_dlq_retry_due); until then the offset is not stored, so after a
     * restart the message is consumed again rather than lost */
    int n = pgs_retryq_fail(&w->dlq_pending, work, omit_value, pgs_clock_now_us());
    pgs_warn("dlq", "cannot produce dead letter for partition %d offset %lld (try %d): %s",
             (int)rkm->partition, (long long)rkm->offset, n, rd_kafka_err2str(err));
}

void pgs_dlq_init(pgs_worker_t *w)
{
    pgs_retryq_init(&w->dlq_pending, DLQ_RETRY_INITIAL_US, DLQ_RETRY_MAX_US,
                    (uint64_t)pgs_clock_now_us() ^ (uint64_t)(uintptr_t)w);
}

void pgs_dlq_retry_due(pgs_worker_t *w)
{
    /* one pass over what is due: an item refused again at once waits anew */
    for (size_t n = pgs_retryq_count(&w->dlq_pending); n > 0; n--) {
        int omit = 0;
        pgs_work_t *work = pgs_retryq_take_due(&w->dlq_pending, pgs_clock_now_us(), &omit);
        if (!work)
            return;
        dlq_produce(w, work, omit);
    }
}

size_t pgs_dlq_pending(const pgs_worker_t *w)
{
    return pgs_retryq_count(&w->dlq_pending);
}

/* One warn line per dead letter: where the message was, which command and
 * clinic, the class and code. The message is PHI-free by contract (errors.md);
 * the command's values never appear. */
static void dlq_log(const pgs_work_t *work)
{
    char part[16], off[24];
    snprintf(part, sizeof(part), "%d", (int)work->part->partition);
    snprintf(off, sizeof(off), "%lld", (long long)work->offset);
    const char *id = "-", *clinic = "-";
    if (work->cmd) {
        id = work->cmd->command_id ? work->cmd->command_id : "-";
        clinic = work->cmd->clinic_id ? work->cmd->clinic_id : "-";
    } else if (work->audit) {
        id = work->audit->event_id ? work->audit->event_id : "-";
        clinic = work->audit->clinic_id ? work->audit->clinic_id : "-";
    }
    const char *kv[] = {"topic",      work->part->stream->topic,
                        "partition",  part,
                        "offset",     off,
                        "command_id", id,
                        "clinic",     clinic,
                        "class",      pgs_error_class_name(pgs_error_class(work->err)),
                        "code",       work->errcode,
                        "reason",     work->errmsg,
                        NULL};
    pgs_log_kv(PGS_LOG_WARN, "dlq", kv, "dead-lettering");
}

void pgs_dlq_send(pgs_worker_t *w, pgs_work_t *work, pgs_err_t err, const char *code,
                  const char *msg)
{
    work->state = PGS_WORK_DEAD_LETTERING;
    work->err = err;
    snprintf(work->errcode, sizeof(work->errcode), "%s",
             code && *code ? code : pgs_error_code(err));
    free(work->errmsg);
    work->errmsg = strdup(msg ? msg : "");
    dlq_log(work);
    pgs_trace_dead_letter(w->tracer, work);
    dlq_produce(w, work, 0);
}

/* @locality librdkafka callback (main thread, inside rd_kafka_poll or
 *           rd_kafka_flush of the producer) */
void pgs_dlq_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    pgs_worker_t *w = opaque;
    pgs_work_t *work = rkm->_private;
    if (!rkm->err)
        pgs_reach_contact(w); /* the broker acknowledged: Kafka answers */
    if (pgs_trace_is_delivery(w->tracer, work)) {
        pgs_trace_delivered(w->tracer, rkm);
        return;
    }
    if (!work) { /* a metrics record */
        if (rkm->err)
            pgs_warn("metrics", "metrics record not delivered: %s", rd_kafka_err2str(rkm->err));
        return;
    }
    if (rkm->err) {
        /* only recorded here: producing (or polling) again inside the
         * callback would re-enter librdkafka; the main loop retries it */
        int n =
            pgs_retryq_fail(&w->dlq_pending, work, rkm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
                            pgs_clock_now_us());
        pgs_warn("dlq",
                 "dead letter for partition %d offset %lld not acknowledged (try %d): %s; "
                 "retrying with backoff",
                 (int)work->part->partition, (long long)work->offset, n,
                 rd_kafka_err2str(rkm->err));
        return;
    }
    if (pgs_retryq_done(&w->dlq_pending, work))
        pgs_info("dlq", "dead letter for partition %d offset %lld delivered after a retry",
                 (int)work->part->partition, (long long)work->offset);
    pgs_complete_count_dead_letter(w, work);
    pgs_complete_work(w, work);
}
