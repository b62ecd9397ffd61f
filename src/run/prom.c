/* Prometheus /metrics: rendered on request from the counters every stage
 * adds to (metrics.h), so a scrape and a WorkerMetrics record never
 * disagree; names follow Prometheus' conventions (pgscribe_ prefix, base
 * units, _total counters). Nothing here carries a message value. */
#include "run/prom.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/promtext.h"
#include "policy/error.h"
#include "run/lag.h"
#include "run/lanes.h"
#include "run/pool.h"
#include "run/worker.h"

/* Commit latency buckets, seconds. */
static const double LATENCY_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};

static void counter(pgs_sbuf_t *sb, const char *name, const char *help, double v)
{
    pgs_promtext_family(sb, name, "counter", help);
    pgs_promtext_sample(sb, name, NULL, 0, v);
}

static void commit_histogram(pgs_sbuf_t *sb, const pgs_hist_t *h)
{
    const char *name = "pgscribe_commit_latency_seconds";
    pgs_promtext_family(sb, name, "histogram",
                        "Time from BEGIN to COMMIT's answer of each committed transaction.");
    char le[32];
    const char *labels[2] = {"le", le};
    for (size_t i = 0; i < sizeof(LATENCY_BUCKETS) / sizeof(LATENCY_BUCKETS[0]); i++) {
        snprintf(le, sizeof(le), "%g", LATENCY_BUCKETS[i]);
        pgs_promtext_sample(sb, "pgscribe_commit_latency_seconds_bucket", labels, 1,
                            (double)pgs_hist_count_le(h, (uint64_t)(LATENCY_BUCKETS[i] * 1e6)));
    }
    snprintf(le, sizeof(le), "+Inf");
    pgs_promtext_sample(sb, "pgscribe_commit_latency_seconds_bucket", labels, 1, (double)h->total);
    pgs_promtext_sample(sb, "pgscribe_commit_latency_seconds_sum", NULL, 0,
                        (double)h->sum_us / 1e6);
    pgs_promtext_sample(sb, "pgscribe_commit_latency_seconds_count", NULL, 0, (double)h->total);
}

static void streams(pgs_worker_t *w, pgs_sbuf_t *sb)
{
    static const struct {
        const char *name, *help;
    } gauges[] = {
        {"pgscribe_in_flight_transactions", "Transactions open now, per stream."},
        {"pgscribe_in_flight_limit", "Transactions the stream's pool may have open now."},
        {"pgscribe_pool_connections", "Open database connections, per stream."},
        {"pgscribe_pool_size", "Database connections the stream's pool may open."},
        {"pgscribe_lane_commands", "Commands queued in lanes, in flight or not, per stream."},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        pgs_promtext_family(sb, gauges[g].name, "gauge", gauges[g].help);
        for (int s = 0; s < PGS_STREAM__COUNT; s++) {
            const pgs_stream_t *st = &w->streams[s];
            const char *labels[2] = {"stream", st->name};
            double v = 0;
            switch (g) {
            case 0:
                v = st->pool ? pgs_pool_busy(st->pool) : 0;
                break;
            case 1:
                v = st->pool ? pgs_pool_in_flight_limit(st->pool) : 0;
                break;
            case 2:
                v = pgs_pool_connected(st->pool);
                break;
            case 3:
                v = st->pool ? pgs_pool_size(st->pool) : 0;
                break;
            default:
                v = st->lanes ? (double)pgs_lanes_queued(st->lanes) : 0;
                break;
            }
            pgs_promtext_sample(sb, gauges[g].name, labels, 1, v);
        }
    }
    static const char *const states[] = {"closed", "half-open", "open"};
    pgs_promtext_family(sb, "pgscribe_breaker_state", "gauge",
                        "1 for the circuit breaker's current state, per stream.");
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        const char *now = st->pool ? pgs_pool_breaker_state(st->pool) : "closed";
        for (size_t k = 0; k < 3; k++) {
            const char *labels[4] = {"stream", st->name, "state", states[k]};
            pgs_promtext_sample(sb, "pgscribe_breaker_state", labels, 2,
                                strcmp(now, states[k]) == 0);
        }
    }
    pgs_promtext_family(sb, "pgscribe_consumer_lag_messages", "gauge",
                        "High watermark minus the next offset to commit, per assigned partition.");
    const char *group = pgs_config_str(w->cfg, "consumer.group");
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            int64_t lag = pgs_lag_partition(w, st, st->parts[i]);
            if (lag < 0)
                continue;
            char part[16];
            snprintf(part, sizeof(part), "%d", (int)st->parts[i]->partition);
            const char *labels[6] = {"group", group, "topic", st->topic, "partition", part};
            pgs_promtext_sample(sb, "pgscribe_consumer_lag_messages", labels, 3, (double)lag);
        }
    }
}

/* A per-clinic family: its name, help and which count it shows. */
typedef struct {
    const char *name, *help;
    int what; /* 0 applied, 1 rows, 2 bytes, 3 db seconds, 4 tenant violations */
} clinic_family_t;

static double clinic_total_value(const pgs_clinic_total_t *ct, int what)
{
    switch (what) {
    case 0:
        return (double)ct->applied;
    case 1:
        return (double)ct->rows_written;
    case 2:
        return (double)ct->bytes_written;
    case 3:
        return (double)ct->db_time_us / 1e6;
    default:
        return (double)ct->tenant_violations;
    }
}

/* Per-clinic series: the totals as the next report will fold them (the
 * interval under way added, by the same cap), each clinic kept by name, the
 * rest summed as clinic="other". */
static void clinics(pgs_worker_t *w, pgs_sbuf_t *sb)
{
    static const clinic_family_t fams[] = {
        {"pgscribe_clinic_commands_applied_total", "Commands applied, per clinic.", 0},
        {"pgscribe_clinic_rows_written_total",
         "Target-table rows written by the clinic's applied commands.", 1},
        {"pgscribe_clinic_written_bytes_total",
         "Bytes of key and data values of the clinic's applied commands (sizes, never values).", 2},
        {"pgscribe_clinic_db_seconds_total",
         "Database time of the clinic's committed transactions (BEGIN to COMMIT).", 3},
        {"pgscribe_clinic_tenant_violations_total",
         "Dead letters of class tenant, per clinic the message claimed.", 4},
    };
    pgs_totals_t view;
    size_t max = (size_t)pgs_config_int(w->cfg, "metrics.per_clinic_max");
    size_t to_other = pgs_metrics_totals_view(&w->ctr, max, &view);
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        pgs_promtext_family(sb, fams[f].name, "counter", fams[f].help);
        for (const pgs_clinic_total_t *ct = view.clinics; ct; ct = ct->next) {
            const char *labels[2] = {"clinic", ct->clinic_id};
            pgs_promtext_sample(sb, fams[f].name, labels, 1, clinic_total_value(ct, fams[f].what));
        }
        double other = clinic_total_value(&view.other, fams[f].what);
        if (other > 0 || to_other) {
            const char *labels[2] = {"clinic", "other"};
            pgs_promtext_sample(sb, fams[f].name, labels, 1, other);
        }
    }
    pgs_metrics_totals_free(&view);
}

static void throttled_sample(const char *clinic, double seconds, void *opaque)
{
    const char *labels[2] = {"clinic", clinic};
    pgs_promtext_sample(opaque, "pgscribe_clinic_throttled_seconds_total", labels, 1, seconds);
}

/* Time each rate-limited clinic spent with commands ready and held back for
 * want of tokens (clinics never throttled have no series). */
static void throttled(pgs_worker_t *w, pgs_sbuf_t *sb)
{
    pgs_promtext_family(sb, "pgscribe_clinic_throttled_seconds_total", "counter",
                        "Time the clinic had commands ready that its rate limit held back "
                        "(limits.*).");
    pgs_ratelimit_each_throttled(w->limits, pgs_clock_now_us(), throttled_sample, sb);
}

void pgs_prom_render(pgs_worker_t *w, pgs_sbuf_t *sb)
{
    const pgs_counters_t *c = &w->ctr;
    const pgs_totals_t *t = &c->totals;
    const char *info[4] = {"version", PGS_VERSION, "worker", w->worker_id};
    pgs_promtext_family(sb, "pgscribe_build_info", "gauge", "Always 1; labels name the build.");
    pgs_promtext_sample(sb, "pgscribe_build_info", info, 2, 1);
    counter(sb, "pgscribe_commands_consumed_total", "Commands consumed from the commands topic.",
            (double)(t->consumed + c->consumed));
    counter(sb, "pgscribe_commands_applied_total",
            "Commands applied: their write committed with their idempotency record.",
            (double)(t->applied + c->applied));
    counter(sb, "pgscribe_commands_duplicate_total",
            "Commands found already applied (re-deliveries): counted, not written again.",
            (double)(t->duplicates + c->duplicates));
    counter(sb, "pgscribe_commands_retried_total",
            "Transient failures of a command that wait out a backoff.",
            (double)(t->retried + c->retried));
    counter(sb, "pgscribe_transactions_total", "Transactions committed by the commands pool.",
            (double)(t->transactions + c->transactions));
    counter(sb, "pgscribe_tenant_violations_total",
            "Dead letters of class tenant: commands or audit events that crossed the wall.",
            (double)(t->tenant_violations + c->tenant_violations));
    counter(sb, "pgscribe_audit_events_stored_total", "Audit events stored.",
            (double)(t->audit_stored + w->streams[PGS_STREAM_AUDIT].stored));
    pgs_promtext_family(sb, "pgscribe_dead_letters_total", "counter",
                        "Dead letters acknowledged by the broker, by stream and error class.");
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        for (int k = PGS_ECLASS_NONE + 1; k <= PGS_ECLASS_DB_PERMANENT; k++) {
            const char *labels[4] = {"stream", w->streams[s].name, "class",
                                     pgs_error_class_name((pgs_eclass_t)k)};
            pgs_promtext_sample(
                sb, "pgscribe_dead_letters_total", labels, 2,
                (double)(t->dead_letters_by_class[s][k] + c->dead_letters_by_class[s][k]));
        }
    }
    counter(sb, "pgscribe_trace_spans_exported_total",
            "Spans handed to the traces topic (OTLP/JSON batches).",
            (double)pgs_trace_exported(w->tracer));
    counter(sb, "pgscribe_trace_spans_dropped_total",
            "Spans dropped: export buffer full, or a batch the traces topic or the OTLP/HTTP "
            "endpoint did not take.",
            (double)pgs_trace_dropped(w->tracer));
    /* always rendered (0 without schema_registry.url): a family that comes
     * and goes with a setting breaks dashboards and absent() alerts */
    counter(sb, "pgscribe_schema_registry_lookups_total",
            "Schema ids looked up in the schema registry and answered (found or not).",
            w->registry ? (double)pgs_schemareg_fetches(w->registry) : 0.0);
    counter(sb, "pgscribe_schema_registry_failures_total",
            "Schema registry requests that got no usable answer (unreachable, time-out, "
            "5xx, 401/403).",
            w->registry ? (double)pgs_schemareg_failures(w->registry) : 0.0);
    pgs_promtext_family(sb, "pgscribe_schema_registry_waiting_messages", "gauge",
                        "Messages waiting for the schema registry, their partitions held.");
    pgs_promtext_sample(sb, "pgscribe_schema_registry_waiting_messages", NULL, 0,
                        (double)w->schema_held);
    pgs_promtext_family(sb, "pgscribe_works_in_flight", "gauge",
                        "Messages consumed and not yet completed (applied or dead-lettered).");
    pgs_promtext_sample(sb, "pgscribe_works_in_flight", NULL, 0, (double)w->works_live);
    commit_histogram(sb, &c->total_commit_latency);
    streams(w, sb);
    clinics(w, sb);
    throttled(w, sb);
    if (w->profile)
        pgs_profile_prom(w->profile, sb);
}
