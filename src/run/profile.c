/* Statement profiles (see profile.h): counted on the main thread as each
 * statement's result is read, rendered for /profile and /metrics, and the
 * trigger of the slow-shape EXPLAIN. Only names and numbers are kept here;
 * a sample's bind values go straight to the explainer and are dropped there. */
#include "run/profile.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/xalloc.h"
#include "policy/hist.h"
#include "run/explain.h"

/* Room for the shapes of their own plus the "other" rows (stream × op × form). */
#define MAX_ROWS (PGS_PROFILE_MAX_SHAPES + 40)

typedef struct {
    char stream[16], entity[64], op[16];
    int multi;
    uint64_t executions, rows, errors;
    pgs_hist_t hist;       /* since start */
    pgs_hist_t window;     /* the window under way */
    int64_t window_p99_us; /* of the last window closed with executions; -1 none */
    int want_sample;
    int64_t last_explain_us; /* when its last EXPLAIN was asked for; 0 never */
    time_t last_explain_at;  /* wall time of its last logged EXPLAIN */
    uint64_t explains;
    uint64_t slow_windows; /* windows whose p99 reached profile.slow_p99_ms */
    char *plan;            /* the last one */
} row_t;

struct pgs_profile_s {
    const pgs_config_t *cfg;
    row_t *rows;
    int nrows, nown;
    int64_t window_start_us;
    int pending;           /* the row waiting for a sample, or -1 */
    int64_t pending_until; /* its request lapses then */
    int explaining;        /* the row whose EXPLAIN runs, or -1 */
    int64_t explain_window_p99_us;
    pgs_explain_t *explainer;
    uint64_t explains;
};

pgs_profile_t *pgs_profile_new(const pgs_config_t *cfg, const char *conninfo)
{
    pgs_profile_t *p = pgs_xalloc_calloc(1, sizeof(*p));
    p->cfg = cfg;
    p->rows = pgs_xalloc_calloc(MAX_ROWS, sizeof(row_t));
    p->pending = p->explaining = -1;
    p->window_start_us = pgs_clock_now_us();
    p->explainer = pgs_explain_new(conninfo);
    return p;
}

void pgs_profile_free(pgs_profile_t *p)
{
    if (!p)
        return;
    pgs_explain_free(p->explainer);
    for (int i = 0; i < p->nrows; i++)
        free(p->rows[i].plan);
    free(p->rows);
    free(p);
}

static int find(const pgs_profile_t *p, const char *stream, const char *entity, const char *op,
                int multi)
{
    for (int i = 0; i < p->nrows; i++) {
        const row_t *r = &p->rows[i];
        if (r->multi == multi && strcmp(r->entity, entity) == 0 && strcmp(r->op, op) == 0 &&
            strcmp(r->stream, stream) == 0)
            return i;
    }
    return -1;
}

int pgs_profile_slot(pgs_profile_t *p, const char *stream, const char *entity, const char *op,
                     int multi)
{
    int i = find(p, stream, entity, op, multi);
    if (i >= 0)
        return i;
    int own = p->nown < PGS_PROFILE_MAX_SHAPES;
    if (!own) {
        entity = "other";
        i = find(p, stream, entity, op, multi);
        if (i >= 0)
            return i;
        if (p->nrows >= MAX_ROWS)
            return p->nrows - 1; /* cannot happen: the "other" rows are few */
    }
    row_t *r = &p->rows[p->nrows];
    snprintf(r->stream, sizeof(r->stream), "%s", stream);
    snprintf(r->entity, sizeof(r->entity), "%s", entity);
    snprintf(r->op, sizeof(r->op), "%s", op);
    r->multi = multi;
    r->window_p99_us = -1;
    pgs_hist_reset(&r->hist);
    pgs_hist_reset(&r->window);
    p->nown += own;
    return p->nrows++;
}

void pgs_profile_record(pgs_profile_t *p, int slot, int64_t took_us, uint64_t rows, int error)
{
    if (slot < 0 || slot >= p->nrows)
        return;
    row_t *r = &p->rows[slot];
    r->executions++;
    r->rows += rows;
    r->errors += error != 0;
    uint64_t us = took_us > 0 ? (uint64_t)took_us : 0;
    pgs_hist_record(&r->hist, us);
    pgs_hist_record(&r->window, us);
}

int pgs_profile_wants_sample(const pgs_profile_t *p, int slot)
{
    return slot >= 0 && slot == p->pending;
}

static const char *form_name(const row_t *r)
{
    return r->multi ? "multi" : "single";
}

void pgs_profile_offer_sample(pgs_profile_t *p, int slot, const char *sql, const char *clinic,
                              int n, const char *const *values, const int *lengths,
                              const int *formats)
{
    if (slot != p->pending)
        return;
    row_t *r = &p->rows[slot];
    p->pending = -1;
    r->want_sample = 0;
    int timeout_ms = (int)pgs_config_int(p->cfg, "profile.explain_timeout_ms");
    if (pgs_explain_start(p->explainer, sql, clinic, n, values, lengths, formats, timeout_ms) !=
        0) {
        pgs_warn("profile", "cannot start the EXPLAIN of %s/%s/%s", r->entity, r->op, form_name(r));
        return;
    }
    r->last_explain_us = pgs_clock_now_us();
    p->explaining = slot;
}

/* The finished EXPLAIN: logged at warn, the shape then the plan, one line
 * per plan line (a plan is longer than one log line holds). */
static void take_explain(pgs_profile_t *p)
{
    char *plan = NULL;
    char errstr[256];
    if (!pgs_explain_take(p->explainer, &plan, errstr, sizeof(errstr)))
        return;
    row_t *r = &p->rows[p->explaining];
    p->explaining = -1;
    if (!plan) {
        pgs_warn("profile", "EXPLAIN of slow shape %s/%s/%s/%s failed: %s", r->stream, r->entity,
                 r->op, form_name(r), errstr);
        return;
    }
    size_t lines = 1;
    for (const char *c = plan; *c; c++)
        lines += *c == '\n';
    pgs_warn("profile",
             "slow statement shape stream=%s entity=%s op=%s form=%s: window p99 %.1f ms, "
             "EXPLAIN (ANALYZE, BUFFERS) of a sample, generic plan, %zu line(s):",
             r->stream, r->entity, r->op, form_name(r), (double)p->explain_window_p99_us / 1000.0,
             lines);
    for (char *line = plan, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        pgs_warn("profile", "plan %s/%s/%s | %s", r->entity, r->op, form_name(r), line);
        if (next)
            next[-1] = '\n';
    }
    free(r->plan);
    r->plan = plan;
    r->explains++;
    r->last_explain_at = time(NULL);
    p->explains++;
}

/* The window is over: a shape whose p99 crossed the threshold asks for a
 * sample, unless an EXPLAIN runs or waits, or its own last one is recent. */
static void close_window(pgs_profile_t *p, int64_t now)
{
    int64_t slow_us = pgs_config_int(p->cfg, "profile.slow_p99_ms") * 1000;
    int64_t interval_us = pgs_config_int(p->cfg, "profile.explain_interval_s") * 1000000;
    int64_t worst = -1;
    int worst_row = -1;
    for (int i = 0; i < p->nrows; i++) {
        row_t *r = &p->rows[i];
        if (r->window.total == 0)
            continue;
        r->window_p99_us = (int64_t)pgs_hist_percentile(&r->window, 99);
        pgs_hist_reset(&r->window);
        int slow = slow_us > 0 && r->window_p99_us >= slow_us;
        r->slow_windows += slow;
        int recent = r->last_explain_us > 0 && now - r->last_explain_us < interval_us;
        if (slow && !recent && r->window_p99_us > worst) {
            worst = r->window_p99_us;
            worst_row = i;
        }
    }
    if (worst_row >= 0 && p->pending < 0 && !pgs_explain_busy(p->explainer)) {
        p->pending = worst_row;
        p->rows[worst_row].want_sample = 1;
        p->explain_window_p99_us = worst;
        /* a shape that is not executed again lets the next one have a turn */
        p->pending_until = now + 2 * pgs_config_int(p->cfg, "profile.window_ms") * 1000;
    }
}

void pgs_profile_tick(pgs_profile_t *p, int64_t now_us)
{
    if (p->explaining >= 0)
        take_explain(p);
    if (p->pending >= 0 && now_us >= p->pending_until) {
        p->rows[p->pending].want_sample = 0;
        p->pending = -1;
    }
    if (now_us - p->window_start_us >= pgs_config_int(p->cfg, "profile.window_ms") * 1000) {
        p->window_start_us = now_us;
        close_window(p, now_us);
    }
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

void pgs_profile_json(const pgs_profile_t *p, const char *worker_id, pgs_sbuf_t *sb)
{
    json_t *root = json_object();
    json_object_set_new(root, "worker", json_string(worker_id));
    json_object_set_new(root, "window_ms",
                        json_integer(pgs_config_int(p->cfg, "profile.window_ms")));
    json_object_set_new(root, "slow_p99_ms",
                        json_integer(pgs_config_int(p->cfg, "profile.slow_p99_ms")));
    json_object_set_new(root, "explains", json_integer((json_int_t)p->explains));
    json_t *shapes = json_array();
    for (int i = 0; i < p->nrows; i++) {
        const row_t *r = &p->rows[i];
        json_t *o = json_object();
        json_object_set_new(o, "stream", json_string(r->stream));
        json_object_set_new(o, "entity", json_string(r->entity));
        json_object_set_new(o, "op", json_string(r->op));
        json_object_set_new(o, "form", json_string(form_name(r)));
        json_object_set_new(o, "executions", json_integer((json_int_t)r->executions));
        json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
        json_object_set_new(o, "errors", json_integer((json_int_t)r->errors));
        json_object_set_new(o, "total_ms", json_real(ms(r->hist.sum_us)));
        json_object_set_new(o, "p50_ms", json_real(ms(pgs_hist_percentile(&r->hist, 50))));
        json_object_set_new(o, "p99_ms", json_real(ms(pgs_hist_percentile(&r->hist, 99))));
        json_object_set_new(o, "max_ms", json_real(ms(r->hist.max_us)));
        json_object_set_new(o, "window_p99_ms",
                            r->window_p99_us >= 0 ? json_real(ms((uint64_t)r->window_p99_us))
                                                  : json_null());
        json_object_set_new(o, "slow_windows", json_integer((json_int_t)r->slow_windows));
        json_object_set_new(o, "explains", json_integer((json_int_t)r->explains));
        char at[32] = "";
        if (r->last_explain_at) {
            struct tm tm;
            gmtime_r(&r->last_explain_at, &tm);
            strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        json_object_set_new(o, "last_explain", at[0] ? json_string(at) : json_null());
        json_object_set_new(o, "plan", r->plan ? json_string(r->plan) : json_null());
        json_array_append_new(shapes, o);
    }
    json_object_set_new(root, "shapes", shapes);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text) {
        pgs_sbuf_puts(sb, text);
        pgs_sbuf_puts(sb, "\n");
        free(text);
    }
}

/* Statement latency buckets, seconds. */
static const double BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void pgs_profile_prom(const pgs_profile_t *p, pgs_sbuf_t *sb)
{
    const char *hname = "pgscribe_statement_latency_seconds";
    pgs_promtext_family(sb, hname, "histogram",
                        "Time of each statement in the pipeline, from its send to its result, "
                        "per statement shape.");
    for (int i = 0; i < p->nrows; i++) {
        const row_t *r = &p->rows[i];
        char le[32];
        const char *labels[8] = {"entity", r->entity, "op", r->op, "form", form_name(r), "le", le};
        for (size_t b = 0; b < sizeof(BUCKETS) / sizeof(BUCKETS[0]); b++) {
            snprintf(le, sizeof(le), "%g", BUCKETS[b]);
            pgs_promtext_sample(sb, "pgscribe_statement_latency_seconds_bucket", labels, 4,
                                (double)pgs_hist_count_le(&r->hist, (uint64_t)(BUCKETS[b] * 1e6)));
        }
        snprintf(le, sizeof(le), "+Inf");
        pgs_promtext_sample(sb, "pgscribe_statement_latency_seconds_bucket", labels, 4,
                            (double)r->hist.total);
        pgs_promtext_sample(sb, "pgscribe_statement_latency_seconds_sum", labels, 3,
                            (double)r->hist.sum_us / 1e6);
        pgs_promtext_sample(sb, "pgscribe_statement_latency_seconds_count", labels, 3,
                            (double)r->hist.total);
    }
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"pgscribe_statement_executions_total", "Statements executed, per statement shape."},
        {"pgscribe_statement_rows_total", "Commands applied by the statements of a shape."},
        {"pgscribe_statement_errors_total", "Statements that answered an error, per shape."},
        {"pgscribe_statement_explains_total", "EXPLAINs of a slow shape's sample, per shape."},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        pgs_promtext_family(sb, fams[f].name, "counter", fams[f].help);
        for (int i = 0; i < p->nrows; i++) {
            const row_t *r = &p->rows[i];
            const char *labels[6] = {"entity", r->entity, "op", r->op, "form", form_name(r)};
            double v = f == 0   ? (double)r->executions
                       : f == 1 ? (double)r->rows
                       : f == 2 ? (double)r->errors
                                : (double)r->explains;
            pgs_promtext_sample(sb, fams[f].name, labels, 3, v);
        }
    }
}

uint64_t pgs_profile_explains(const pgs_profile_t *p)
{
    return p->explains;
}
