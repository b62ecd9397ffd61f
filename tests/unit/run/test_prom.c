/* /metrics text (run/prom.c) from the worker's counters: dead letters by
 * stream and class, and the per-clinic rows, value bytes and "other" series,
 * each the totals plus the interval under way; throttled seconds per
 * rate-limited clinic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "run/metrics.h"
#include "run/prom.h"
#include "run/worker.h"

static pgs_clinic_counter_t *interval_clinic(pgs_counters_t *c, const char *id, int64_t applied,
                                             int64_t bytes)
{
    pgs_clinic_counter_t *cc = calloc(1, sizeof(*cc));
    cc->clinic_id = strdup(id);
    cc->applied = applied;
    cc->rows_written = applied;
    cc->bytes_written = bytes;
    cc->next = c->clinics;
    c->clinics = cc;
    return cc;
}

static pgs_worker_t *worker_new(void)
{
    pgs_worker_t *w = calloc(1, sizeof(*w));
    w->cfg = pgs_config_new();
    strcpy(w->worker_id, "w-test");
    w->streams[PGS_STREAM_COMMANDS].name = "commands";
    w->streams[PGS_STREAM_COMMANDS].topic = "clinic.commands";
    w->streams[PGS_STREAM_AUDIT].name = "audit";
    w->streams[PGS_STREAM_AUDIT].topic = "clinic.audit";
    return w;
}

static void worker_free(pgs_worker_t *w)
{
    pgs_metrics_counters_reset(&w->ctr);
    pgs_metrics_totals_free(&w->ctr.totals);
    pgs_config_free(w->cfg);
    free(w);
}

static char *render(pgs_worker_t *w)
{
    pgs_sbuf_t sb = {0};
    pgs_prom_render(w, &sb);
    return sb.buf;
}

static void assert_line(const char *text, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_dead_letters_by_stream_and_class(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    w->ctr.totals.dead_letters_by_class[PGS_STREAM_AUDIT][PGS_ECLASS_TENANT] = 1;
    w->ctr.totals.dead_letters_by_class[PGS_STREAM_COMMANDS][PGS_ECLASS_DB_PERMANENT] = 3;
    w->ctr.dead_letters_by_class[PGS_STREAM_COMMANDS][PGS_ECLASS_DB_PERMANENT] = 2;
    char *text = render(w);
    assert_line(text, "pgscribe_dead_letters_total{stream=\"commands\",class=\"db-permanent\"} 5");
    assert_line(text, "pgscribe_dead_letters_total{stream=\"audit\",class=\"tenant\"} 1");
    assert_line(text, "pgscribe_dead_letters_total{stream=\"audit\",class=\"db-permanent\"} 0");
    assert_line(text, "pgscribe_dead_letters_total{stream=\"commands\",class=\"tenant\"} 0");
    free(text);
    worker_free(w);
}

/* With a cap of one clinic, the first folded keeps its series and the next
 * is summed into clinic="other"; a scrape adds the interval under way. */
static void test_clinic_rows_and_bytes(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    char err[128];
    assert_int_equal(pgs_config_set(w->cfg, "metrics.per_clinic_max", "1", err, sizeof(err)), 0);
    interval_clinic(&w->ctr, "clinic-a", 3, 40);
    pgs_metrics_fold(&w->ctr, 0, 0, 1);
    pgs_metrics_counters_reset(&w->ctr);
    interval_clinic(&w->ctr, "clinic-b", 1, 7);
    pgs_metrics_fold(&w->ctr, 0, 0, 1);
    pgs_metrics_counters_reset(&w->ctr);
    interval_clinic(&w->ctr, "clinic-a", 2, 10);
    interval_clinic(&w->ctr, "clinic-c", 4, 100);
    char *text = render(w);
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"clinic-a\"} 5");
    assert_line(text, "pgscribe_clinic_written_bytes_total{clinic=\"clinic-a\"} 50");
    assert_line(text, "pgscribe_clinic_commands_applied_total{clinic=\"clinic-a\"} 5");
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"other\"} 5");
    assert_line(text, "pgscribe_clinic_written_bytes_total{clinic=\"other\"} 107");
    assert_null(strstr(text, "clinic-b"));
    assert_null(strstr(text, "clinic-c"));
    free(text);
    worker_free(w);
}

/* Before the first report folds anything, a scrape shows each clinic of the
 * interval under its own name, as the fold will keep it (up to the cap),
 * not all of them as clinic="other". */
static void test_clinics_before_first_fold(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    interval_clinic(&w->ctr, "clinic-a", 3, 40);
    interval_clinic(&w->ctr, "clinic-b", 2, 10);
    char *text = render(w);
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"clinic-a\"} 3");
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"clinic-b\"} 2");
    assert_null(strstr(text, "clinic=\"other\""));
    free(text);

    /* with a cap of one, the clinic the fold keeps first is named, the
     * other summed, and the next fold agrees with what was scraped */
    char err[128];
    assert_int_equal(pgs_config_set(w->cfg, "metrics.per_clinic_max", "1", err, sizeof(err)), 0);
    text = render(w);
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"clinic-b\"} 2");
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"other\"} 3");
    assert_null(strstr(text, "clinic-a"));
    free(text);
    pgs_metrics_fold(&w->ctr, 0, 0, 1);
    pgs_metrics_counters_reset(&w->ctr);
    text = render(w);
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"clinic-b\"} 2");
    assert_line(text, "pgscribe_clinic_rows_written_total{clinic=\"other\"} 3");
    free(text);
    worker_free(w);
}

static void test_lag_without_partitions(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    char *text = render(w);
    /* no partition assigned: the family is declared, with no sample */
    assert_non_null(strstr(text, "# TYPE pgscribe_consumer_lag_messages gauge\n"));
    assert_null(strstr(text, "pgscribe_consumer_lag_messages{"));
    free(text);
    worker_free(w);
}

/* A clinic held back by its rate limit has a throttled-seconds series; a
 * clinic never throttled has none. */
static void test_throttled_seconds(void **state)
{
    (void)state;
    pgs_worker_t *w = worker_new();
    char err[128];
    w->limits = pgs_ratelimit_new();
    assert_int_equal(
        pgs_ratelimit_configure(w->limits, 0, 0, "clinic-x:1:1,clinic-y:1000", 0, err, sizeof(err)),
        0);
    assert_int_equal(pgs_ratelimit_take(w->limits, "clinic-x", 8, 5, 0), 1); /* spell starts */
    assert_int_equal(pgs_ratelimit_take(w->limits, "clinic-y", 8, 5, 0), 5);
    char *text = render(w);
    assert_non_null(strstr(text, "# TYPE pgscribe_clinic_throttled_seconds_total counter\n"));
    const char *x = strstr(text, "pgscribe_clinic_throttled_seconds_total{clinic=\"clinic-x\"} ");
    assert_non_null(x);
    assert_true(atof(strchr(x, '}') + 2) > 1.0); /* since time 0: the clock is far past it */
    assert_null(strstr(text, "clinic-y"));
    free(text);
    pgs_ratelimit_free(w->limits);
    worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letters_by_stream_and_class),
        cmocka_unit_test(test_clinic_rows_and_bytes),
        cmocka_unit_test(test_clinics_before_first_fold),
        cmocka_unit_test(test_lag_without_partitions),
        cmocka_unit_test(test_throttled_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
