/* Tracing: span lifecycle and export. A command whose traceparent header
 * passes the sampling gets a `process <topic>` span (CONSUMER, child of the
 * producer's span) from intake to completion; each transaction it is sent
 * in adds a CLIENT span under it, its dead letter a PRODUCER span, its
 * retries events. Finished spans wait in a bounded buffer and go out in
 * batches, one OTLP/JSON ExportTraceServiceRequest per message, on the
 * worker's producer to topic.traces, and to trace.otlp_endpoint when set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "codec/command.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/otlpjson.h"
#include "policy/error.h"
#include "run/otlphttp.h"
#include "run/trace.h"

/* what a traced work carries (work->tspan) */
struct pgs_work_trace_s {
    pgs_otlp_span_t process;
    pgs_otlp_span_t *send; /* its dead letter's, while being produced */
    int batch;             /* commands in its last transaction */
};

struct pgs_tracer_s {
    const pgs_config_t *cfg; /* sampling, ratio and flush settings are read live */
    rd_kafka_t *producer;
    char *topic;
    char *group;
    char *dbname;
    pgs_otlp_attr_t resource[3];
    pgs_otlp_span_t **buf; /* finished spans waiting for export */
    size_t nbuf, cap;
    int64_t next_flush_us;
    int64_t dropped, exported;
    int64_t undelivered; /* traces messages the broker did not take */
    int unacked;         /* traces messages awaiting their delivery report */
    uint8_t rnd[256];    /* span ids, from getrandom */
    size_t rnd_pos;
    pgs_otlphttp_t *http;
};

/* Traces messages produced and not yet reported on: past this many, a batch
 * is dropped rather than queued, so a traces topic that takes nothing (one
 * missing, say) cannot fill the producer's queue that dead letters need. */
#define TRACE_MAX_UNACKED_BATCHES 32

/* the delivery opaque of traces messages */
static const char delivery_tag[] = "trace";

int pgs_trace_decide(pgs_trace_mode_t mode, double ratio, const pgs_traceparent_t *tp)
{
    if (mode == PGS_TRACE_NEVER || (mode == PGS_TRACE_PARENT && !pgs_traceparent_sampled(tp)))
        return 0;
    if (ratio >= 1.0)
        return 1;
    if (ratio <= 0.0)
        return 0;
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | tp->trace_id[i];
    return (double)v < ratio * 18446744073709551616.0;
}

/* A span id: 8 bytes from getrandom, never all zero. */
static void new_span_id(pgs_tracer_t *t, uint8_t id[8])
{
    for (;;) {
        if (t->rnd_pos + 8 > sizeof(t->rnd)) {
            ssize_t got = getrandom(t->rnd, sizeof(t->rnd), 0);
            if (got != (ssize_t)sizeof(t->rnd)) {
                pgs_error("trace", "getrandom failed: %s", strerror(errno));
                abort();
            }
            t->rnd_pos = 0;
        }
        memcpy(id, t->rnd + t->rnd_pos, 8);
        t->rnd_pos += 8;
        for (int i = 0; i < 8; i++)
            if (id[i])
                return;
    }
}

static char *dup_or_abort(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

pgs_tracer_t *pgs_trace_new(const pgs_config_t *cfg, const char *worker_id, rd_kafka_t *producer,
                            char *errstr, size_t errstr_size)
{
    pgs_tracer_t *t = calloc(1, sizeof(*t));
    if (!t)
        abort();
    t->cfg = cfg;
    t->producer = producer;
    t->topic = dup_or_abort(pgs_config_str(cfg, "topic.traces"));
    t->group = dup_or_abort(pgs_config_str(cfg, "consumer.group"));
    t->dbname = dup_or_abort("");
    t->resource[0] = (pgs_otlp_attr_t){.key = "service.name", .s = dup_or_abort("pgscribe")};
    t->resource[1] = (pgs_otlp_attr_t){.key = "service.version", .s = dup_or_abort(PGS_VERSION)};
    t->resource[2] = (pgs_otlp_attr_t){.key = "service.instance.id", .s = dup_or_abort(worker_id)};
    t->cap = (size_t)pgs_config_int(cfg, "trace.max_buffered_spans");
    t->buf = calloc(t->cap, sizeof(*t->buf));
    if (!t->buf)
        abort();
    t->rnd_pos = sizeof(t->rnd);
    t->next_flush_us = pgs_clock_now_us() + pgs_config_int(cfg, "trace.flush_ms") * 1000;
    const char *endpoint = pgs_config_str(cfg, "trace.otlp_endpoint");
    if (endpoint && *endpoint) {
        t->http = pgs_otlphttp_new(endpoint, (size_t)pgs_config_int(cfg, "trace.otlp_queue_max"),
                                   (long)pgs_config_int(cfg, "trace.otlp_timeout_ms"), errstr,
                                   errstr_size);
        if (!t->http) {
            pgs_trace_free(t);
            return NULL;
        }
    }
    return t;
}

void pgs_trace_set_db(pgs_tracer_t *t, const char *dbname)
{
    free(t->dbname);
    t->dbname = dup_or_abort(dbname);
}

static void span_free(pgs_otlp_span_t *sp)
{
    pgs_otlp_span_clear(sp);
    free(sp);
}

/* Hands a finished span (malloc'd) to the export buffer, or drops it. */
static void finish(pgs_tracer_t *t, pgs_otlp_span_t *sp)
{
    if (t->nbuf == t->cap) {
        t->dropped++;
        span_free(sp);
        return;
    }
    t->buf[t->nbuf++] = sp;
}

static pgs_trace_mode_t mode_of(const char *s)
{
    return strcmp(s, "always") == 0  ? PGS_TRACE_ALWAYS
           : strcmp(s, "never") == 0 ? PGS_TRACE_NEVER
                                     : PGS_TRACE_PARENT;
}

void pgs_trace_begin(pgs_tracer_t *t, pgs_work_t *work, int64_t consumed_ns)
{
    if (!t || !work->traced || work->part->stream->kind != PGS_STREAM_COMMANDS ||
        !pgs_trace_decide(mode_of(pgs_config_str(t->cfg, "trace.sampling")),
                          pgs_config_double(t->cfg, "trace.ratio"), &work->trace))
        return;
    struct pgs_work_trace_s *ts = calloc(1, sizeof(*ts));
    if (!ts)
        abort();
    const char *topic = work->part->stream->topic;
    char name[300];
    snprintf(name, sizeof(name), "process %s", topic);
    pgs_otlp_span_t *sp = &ts->process;
    pgs_otlp_span_init(sp, name, PGS_OTLP_KIND_CONSUMER);
    memcpy(sp->trace_id, work->trace.trace_id, 16);
    memcpy(sp->parent_span_id, work->trace.span_id, 8);
    sp->has_parent = 1;
    new_span_id(t, sp->span_id);
    sp->start_ns = (uint64_t)consumed_ns;
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)work->part->partition);
    pgs_otlp_attr_str(sp, "messaging.system", "kafka");
    pgs_otlp_attr_str(sp, "messaging.operation.type", "process");
    pgs_otlp_attr_str(sp, "messaging.operation.name", "process");
    pgs_otlp_attr_str(sp, "messaging.destination.name", topic);
    pgs_otlp_attr_str(sp, "messaging.destination.partition.id", part);
    pgs_otlp_attr_int(sp, "messaging.kafka.offset", work->offset);
    pgs_otlp_attr_str(sp, "messaging.consumer.group.name", t->group);
    /* (the message key is left out: its primary-key part may be PHI) */
    const pgs_command_t *cmd = work->cmd;
    if (cmd && pgs_command_clinic_id_valid(cmd->clinic_id))
        pgs_otlp_attr_str(sp, "pgscribe.clinic_id", cmd->clinic_id);
    if (cmd && cmd->command_id)
        pgs_otlp_attr_str(sp, "pgscribe.command_id", cmd->command_id);
    work->tspan = ts;
}

void pgs_trace_transaction(pgs_tracer_t *t, pgs_work_t *const *works, int n, int64_t took_us,
                           const char *code, const char *msg)
{
    if (!t)
        return;
    int64_t end = pgs_clock_wall_ns();
    for (int i = 0; i < n; i++) {
        pgs_work_t *wk = works[i];
        struct pgs_work_trace_s *ts = wk->tspan;
        if (!ts)
            continue;
        ts->batch = n;
        const char *op = wk->cmd ? pgs_command_op_name(wk->cmd->op) : "transaction";
        const char *schema = wk->cat ? pgs_catalog_schema(wk->cat) : "";
        char coll[300], summary[320];
        snprintf(coll, sizeof(coll), "%s.%s", schema, wk->ent ? wk->ent->name : "");
        /* the statement's shape, never its text or a value */
        snprintf(summary, sizeof(summary), "%s %s", op, coll);
        pgs_otlp_span_t *sp = calloc(1, sizeof(*sp));
        if (!sp)
            abort();
        pgs_otlp_span_init(sp, summary, PGS_OTLP_KIND_CLIENT);
        memcpy(sp->trace_id, ts->process.trace_id, 16);
        memcpy(sp->parent_span_id, ts->process.span_id, 8);
        sp->has_parent = 1;
        new_span_id(t, sp->span_id);
        sp->start_ns = (uint64_t)(end - took_us * 1000);
        sp->end_ns = (uint64_t)end;
        pgs_otlp_attr_str(sp, "db.system.name", "postgresql");
        pgs_otlp_attr_str(sp, "db.namespace", t->dbname);
        pgs_otlp_attr_str(sp, "db.operation.name", op);
        pgs_otlp_attr_str(sp, "db.collection.name", coll);
        pgs_otlp_attr_str(sp, "db.query.summary", summary);
        pgs_otlp_attr_int(sp, "pgscribe.transaction.commands", n);
        if (code) {
            pgs_otlp_attr_str(sp, "db.response.status_code", code);
            pgs_otlp_attr_str(sp, "error.type", code);
            pgs_otlp_span_status(sp, PGS_OTLP_STATUS_ERROR, msg);
        } else {
            /* rows the command wrote: 0 when its id was already recorded */
            pgs_otlp_attr_int(sp, "pgscribe.rows", wk->fresh ? 1 : 0);
        }
        finish(t, sp);
    }
}

void pgs_trace_retry(pgs_tracer_t *t, pgs_work_t *work, const char *code, int64_t delay_us)
{
    (void)t;
    struct pgs_work_trace_s *ts = work->tspan;
    if (!ts)
        return;
    pgs_otlp_event_t *ev = pgs_otlp_event_add(&ts->process, "retry", (uint64_t)pgs_clock_wall_ns());
    pgs_otlp_event_int(ev, "pgscribe.attempt", work->attempts);
    pgs_otlp_event_str(ev, "pgscribe.error.code", code ? code : "");
    pgs_otlp_event_int(ev, "pgscribe.retry.delay_ms", delay_us / 1000);
}

void pgs_trace_dead_letter(pgs_tracer_t *t, pgs_work_t *work)
{
    struct pgs_work_trace_s *ts = work->tspan;
    if (!t || !ts || ts->send)
        return;
    const char *dlq = work->part->stream->dlq_topic;
    char name[300];
    snprintf(name, sizeof(name), "send %s", dlq);
    pgs_otlp_span_t *sp = calloc(1, sizeof(*sp));
    if (!sp)
        abort();
    pgs_otlp_span_init(sp, name, PGS_OTLP_KIND_PRODUCER);
    memcpy(sp->trace_id, ts->process.trace_id, 16);
    memcpy(sp->parent_span_id, ts->process.span_id, 8);
    sp->has_parent = 1;
    new_span_id(t, sp->span_id);
    sp->start_ns = (uint64_t)pgs_clock_wall_ns();
    const char *klass = pgs_error_class_name(pgs_error_class(work->err));
    pgs_otlp_attr_str(sp, "messaging.system", "kafka");
    pgs_otlp_attr_str(sp, "messaging.operation.type", "send");
    pgs_otlp_attr_str(sp, "messaging.operation.name", "send");
    pgs_otlp_attr_str(sp, "messaging.destination.name", dlq);
    pgs_otlp_attr_str(sp, "error.type", work->errcode);
    pgs_otlp_attr_str(sp, "pgscribe.error.class", klass);
    pgs_otlp_attr_str(sp, "pgscribe.error.code", work->errcode);
    ts->send = sp;
}

void pgs_trace_end(pgs_tracer_t *t, pgs_work_t *work)
{
    struct pgs_work_trace_s *ts = work->tspan;
    if (!ts)
        return;
    if (!t) {
        pgs_trace_discard(work);
        return;
    }
    work->tspan = NULL;
    int64_t now = pgs_clock_wall_ns();
    pgs_otlp_span_t *sp = malloc(sizeof(*sp));
    if (!sp)
        abort();
    *sp = ts->process; /* the strings move with it */
    sp->end_ns = (uint64_t)now;
    int dead = work->state == PGS_WORK_DEAD_LETTERING;
    pgs_otlp_attr_int(sp, "messaging.batch.message_count", ts->batch > 0 ? ts->batch : 1);
    pgs_otlp_attr_str(sp, "pgscribe.outcome",
                      dead          ? "dead_letter"
                      : work->fresh ? "applied"
                                    : "duplicate");
    if (work->attempts > 0)
        pgs_otlp_attr_int(sp, "pgscribe.attempts", work->attempts);
    if (dead) {
        char why[160];
        snprintf(why, sizeof(why), "dead-lettered: %s %s",
                 pgs_error_class_name(pgs_error_class(work->err)), work->errcode);
        pgs_otlp_attr_str(sp, "error.type", work->errcode);
        pgs_otlp_span_status(sp, PGS_OTLP_STATUS_ERROR, why);
    }
    if (ts->send) {
        ts->send->end_ns = (uint64_t)now;
        finish(t, ts->send);
    }
    free(ts);
    finish(t, sp);
}

void pgs_trace_discard(pgs_work_t *work)
{
    struct pgs_work_trace_s *ts = work->tspan;
    if (!ts)
        return;
    pgs_otlp_span_clear(&ts->process);
    if (ts->send)
        span_free(ts->send);
    free(ts);
    work->tspan = NULL;
}

/* One batch of up to trace.batch_spans spans out: to the traces topic, and a
 * copy to the OTLP/HTTP sender. @returns 0, or -1 when nothing was left. */
static int export_batch(pgs_tracer_t *t)
{
    size_t n = (size_t)pgs_config_int(t->cfg, "trace.batch_spans");
    if (n > t->nbuf)
        n = t->nbuf;
    if (n == 0)
        return -1;
    pgs_otlp_resource_t res = {
        .attrs = t->resource, .nattrs = 3, .scope_name = "pgscribe", .scope_version = PGS_VERSION};
    char *body = pgs_otlp_encode(&res, t->buf, n);
    for (size_t i = 0; i < n; i++)
        span_free(t->buf[i]);
    memmove(t->buf, t->buf + n, (t->nbuf - n) * sizeof(*t->buf));
    t->nbuf -= n;
    if (!body || t->unacked >= TRACE_MAX_UNACKED_BATCHES) {
        free(body);
        t->dropped += (int64_t)n;
        return 0;
    }
    if (t->http) {
        char *copy = strdup(body);
        if (copy)
            pgs_otlphttp_post(t->http, copy, n);
    }
    /* the span count rides in the opaque's place: a failed delivery knows
     * how many spans it dropped */
    size_t len = strlen(body);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
    char count[24];
    snprintf(count, sizeof(count), "%zu", n);
    rd_kafka_header_add(hdrs, "pgscribe.spans", -1, count, -1);
    const char *key = t->resource[2].s;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        t->producer, RD_KAFKA_V_TOPIC(t->topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(body, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)delivery_tag), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        free(body);
        t->dropped += (int64_t)n;
        pgs_warn("trace", "cannot produce %zu span(s) to %s: %s", n, t->topic,
                 rd_kafka_err2str(err));
        return 0;
    }
    t->exported += (int64_t)n;
    t->unacked++;
    return 0;
}

void pgs_trace_tick(pgs_tracer_t *t, int64_t now_us)
{
    if (!t)
        return;
    size_t batch = (size_t)pgs_config_int(t->cfg, "trace.batch_spans");
    while (t->nbuf >= batch)
        export_batch(t);
    if (now_us < t->next_flush_us)
        return;
    t->next_flush_us = now_us + pgs_config_int(t->cfg, "trace.flush_ms") * 1000;
    pgs_trace_flush(t);
}

void pgs_trace_flush(pgs_tracer_t *t)
{
    if (!t || !t->producer)
        return;
    while (export_batch(t) == 0)
        ;
}

int64_t pgs_trace_dropped(const pgs_tracer_t *t)
{
    return t ? t->dropped + pgs_otlphttp_dropped(t->http) : 0;
}

size_t pgs_trace_buffered(const pgs_tracer_t *t)
{
    return t ? t->nbuf : 0;
}

int64_t pgs_trace_exported(const pgs_tracer_t *t)
{
    return t ? t->exported : 0;
}

int pgs_trace_is_delivery(const pgs_tracer_t *t, const void *opaque)
{
    (void)t;
    return opaque == (const void *)delivery_tag;
}

void pgs_trace_delivered(pgs_tracer_t *t, const rd_kafka_message_t *rkm)
{
    if (t->unacked > 0)
        t->unacked--;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;
    int64_t n = 1;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "pgscribe.spans", &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        v && len < 20) {
        char num[24];
        memcpy(num, v, len);
        num[len] = '\0';
        n = strtoll(num, NULL, 10);
    }
    t->dropped += n;
    t->exported -= n;
    /* a topic that stays unwritable is logged at failures 1, 2, 4, 8, ... */
    t->undelivered++;
    if ((t->undelivered & (t->undelivered - 1)) == 0)
        pgs_warn("trace", "%lld span(s) not delivered to %s (failure %lld): %s", (long long)n,
                 t->topic, (long long)t->undelivered, rd_kafka_err2str(rkm->err));
}

void pgs_trace_free(pgs_tracer_t *t)
{
    if (!t)
        return;
    pgs_trace_flush(t);
    for (size_t i = 0; i < t->nbuf; i++)
        span_free(t->buf[i]);
    free(t->buf);
    pgs_otlphttp_free(t->http);
    for (int i = 0; i < 3; i++)
        free(t->resource[i].s);
    free(t->topic);
    free(t->group);
    free(t->dbname);
    free(t);
}
