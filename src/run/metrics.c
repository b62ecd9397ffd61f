/* Report: a WorkerMetrics record (Avro) on the metrics topic every
 * interval, keyed by worker id, with the interval's counts. All figures come
 * from the one counters struct; nothing here carries a message value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "run/dlq.h"
#include "run/lag.h"
#include "run/metrics.h"
#include "run/pool.h"
#include "run/worker.h"

void pgs_metrics_counters_reset(pgs_counters_t *c)
{
    pgs_clinic_counter_t *cc = c->clinics;
    while (cc) {
        pgs_clinic_counter_t *n = cc->next;
        free(cc->clinic_id);
        free(cc);
        cc = n;
    }
    c->clinics = NULL;
    c->consumed = c->applied = c->duplicates = c->retried = c->dead_lettered = 0;
    c->transactions = c->tenant_violations = 0;
    memset(c->dead_letters_by_class, 0, sizeof(c->dead_letters_by_class));
    pgs_hist_reset(&c->commit_latency);
}

static pgs_clinic_total_t *clinic_total(pgs_totals_t *t, const char *clinic_id, size_t max)
{
    for (pgs_clinic_total_t *ct = t->clinics; ct; ct = ct->next) {
        if (strcmp(ct->clinic_id, clinic_id) == 0)
            return ct;
    }
    if (t->nclinics >= max)
        return &t->other;
    pgs_clinic_total_t *ct = pgs_xalloc_calloc(1, sizeof(*ct));
    ct->clinic_id = pgs_xalloc_strdup(clinic_id);
    ct->next = t->clinics;
    t->clinics = ct;
    t->nclinics++;
    return ct;
}

/* Adds each clinic's interval counts to its totals (new clinics while under
 * the cap, the rest to "other"); returns how many went to "other". */
static size_t fold_clinics(pgs_totals_t *t, const pgs_clinic_counter_t *cc, size_t max)
{
    size_t to_other = 0;
    for (; cc; cc = cc->next) {
        pgs_clinic_total_t *ct = clinic_total(t, cc->clinic_id, max);
        to_other += ct == &t->other;
        ct->applied += cc->applied;
        ct->rows_written += cc->rows_written;
        ct->bytes_written += cc->bytes_written;
        ct->db_time_us += cc->db_time_us;
        ct->tenant_violations += cc->tenant_violations;
    }
    return to_other;
}

void pgs_metrics_fold(pgs_counters_t *c, int64_t audit_stored, int64_t audit_duplicates,
                      size_t per_clinic_max)
{
    pgs_totals_t *t = &c->totals;
    t->consumed += c->consumed;
    t->applied += c->applied;
    t->duplicates += c->duplicates;
    t->retried += c->retried;
    t->transactions += c->transactions;
    t->tenant_violations += c->tenant_violations;
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < 8; k++)
            t->dead_letters_by_class[s][k] += c->dead_letters_by_class[s][k];
    }
    t->audit_stored += audit_stored;
    t->audit_duplicates += audit_duplicates;
    fold_clinics(t, c->clinics, per_clinic_max);
}

size_t pgs_metrics_totals_view(const pgs_counters_t *c, size_t per_clinic_max, pgs_totals_t *view)
{
    const pgs_totals_t *t = &c->totals;
    memset(view, 0, sizeof(*view));
    view->other = t->other;
    view->other.clinic_id = NULL;
    view->other.next = NULL;
    pgs_clinic_total_t **tail = &view->clinics;
    for (const pgs_clinic_total_t *ct = t->clinics; ct; ct = ct->next) {
        pgs_clinic_total_t *copy = pgs_xalloc_calloc(1, sizeof(*copy));
        *copy = *ct;
        copy->clinic_id = pgs_xalloc_strdup(ct->clinic_id);
        copy->next = NULL;
        *tail = copy;
        tail = &copy->next;
    }
    view->nclinics = t->nclinics;
    return fold_clinics(view, c->clinics, per_clinic_max);
}

void pgs_metrics_totals_free(pgs_totals_t *t)
{
    pgs_clinic_total_t *ct = t->clinics;
    while (ct) {
        pgs_clinic_total_t *n = ct->next;
        free(ct->clinic_id);
        free(ct);
        ct = n;
    }
    t->clinics = NULL;
    t->nclinics = 0;
}

/* The worse of the two pools' breakers. */
static const char *breaker_state(const pgs_worker_t *w)
{
    const char *state = "closed";
    for (int i = 0; i < PGS_STREAM__COUNT; i++) {
        const pgs_pool_t *pool = w->streams[i].pool;
        if (!pool)
            continue;
        const char *s = pgs_pool_breaker_state(pool);
        if (strcmp(s, "open") == 0 || (strcmp(s, "half-open") == 0 && strcmp(state, "open")))
            state = s;
    }
    return state;
}

void pgs_metrics_maybe_report(pgs_worker_t *w, int force)
{
    int64_t now = pgs_clock_now_us();
    if (!force && now < w->metrics_next_us)
        return;
    pgs_counters_t *c = &w->ctr;
    size_t nclinics = 0;
    for (pgs_clinic_counter_t *cc = c->clinics; cc; cc = cc->next)
        nclinics++;
    pgs_clinic_stat_t *clinics = calloc(nclinics ? nclinics : 1, sizeof(*clinics));
    size_t i = 0;
    for (pgs_clinic_counter_t *cc = c->clinics; cc; cc = cc->next, i++) {
        clinics[i].clinic_id = cc->clinic_id;
        clinics[i].applied = cc->applied;
        clinics[i].db_time_us = cc->db_time_us;
        clinics[i].tenant_violations = cc->tenant_violations;
    }
    const pgs_pool_t *cmd_pool = w->streams[PGS_STREAM_COMMANDS].pool;
    pgs_metrics_record_t rec = {
        .worker_id = w->worker_id,
        .interval_start_ms = w->metrics_interval_start_ms,
        .interval_end_ms = pgs_clock_now_ms(),
        .consumed = c->consumed,
        .applied = c->applied,
        .duplicates = c->duplicates,
        .retried = c->retried,
        .dead_lettered = c->dead_lettered,
        .failed = c->dead_lettered,
        .transactions = c->transactions,
        .commit_p50_ms = (double)pgs_hist_percentile(&c->commit_latency, 50) / 1000.0,
        .commit_p95_ms = (double)pgs_hist_percentile(&c->commit_latency, 95) / 1000.0,
        .commit_p99_ms = (double)pgs_hist_percentile(&c->commit_latency, 99) / 1000.0,
        .in_flight = (int64_t)w->works_live,
        .in_flight_transactions = cmd_pool ? pgs_pool_busy(cmd_pool) : 0,
        .in_flight_limit = cmd_pool ? pgs_pool_in_flight_limit(cmd_pool) : 0,
        .consumer_lag = w->consumer ? pgs_lag_commands(w) : 0,
        .breaker_state = breaker_state(w),
        .tenant_violations = c->tenant_violations,
        .clinics = clinics,
        .clinic_cnt = pgs_config_bool(w->cfg, "metrics.per_clinic") ? nclinics : 0,
    };
    char *buf = NULL;
    size_t len = 0;
    if (pgs_codec_encode_metrics(w->codec, &rec, &buf, &len) == 0) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_TOPIC(w->metrics_topic),
            RD_KAFKA_V_KEY(w->worker_id, strlen(w->worker_id)), RD_KAFKA_V_VALUE(buf, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (err) {
            pgs_warn("metrics", "cannot produce metrics record: %s", rd_kafka_err2str(err));
            free(buf);
        }
    } else {
        pgs_error("metrics", "cannot encode metrics record");
    }
    pgs_info("metrics",
             "interval: consumed=%lld applied=%lld duplicates=%lld retried=%lld "
             "dead_lettered=%lld transactions=%lld commit_p50_ms=%.2f commit_p99_ms=%.2f "
             "in_flight=%lld lag=%lld txns=%lld txn_limit=%lld tenant_violations=%lld "
             "dlq_pending=%zu",
             (long long)rec.consumed, (long long)rec.applied, (long long)rec.duplicates,
             (long long)rec.retried, (long long)rec.dead_lettered, (long long)rec.transactions,
             rec.commit_p50_ms, rec.commit_p99_ms, (long long)rec.in_flight,
             (long long)rec.consumer_lag, (long long)rec.in_flight_transactions,
             (long long)rec.in_flight_limit, (long long)rec.tenant_violations, pgs_dlq_pending(w));
    pgs_stream_t *audit = &w->streams[PGS_STREAM_AUDIT];
    if (audit->stored || audit->duplicates)
        pgs_info("metrics", "interval: audit_events stored=%lld duplicates=%lld",
                 (long long)audit->stored, (long long)audit->duplicates);
    pgs_metrics_fold(c, audit->stored, audit->duplicates,
                     (size_t)pgs_config_int(w->cfg, "metrics.per_clinic_max"));
    audit->stored = audit->duplicates = 0;
    free(clinics);
    pgs_metrics_counters_reset(c);
    w->metrics_interval_start_ms = rec.interval_end_ms;
    w->metrics_next_us = now + pgs_config_int(w->cfg, "metrics.interval_ms") * 1000;
}
