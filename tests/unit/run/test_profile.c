/* Unit tests: statement profiles (shape slots and their cap, counts and the
 * Prometheus families, the slow window's sample request and its rate limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "run/profile.h"

static pgs_config_t *config(const char *window_ms, const char *slow_ms)
{
    pgs_config_t *cfg = pgs_config_new();
    char err[256];
    assert_int_equal(pgs_config_set(cfg, "profile.window_ms", window_ms, err, sizeof(err)), 0);
    assert_int_equal(pgs_config_set(cfg, "profile.slow_p99_ms", slow_ms, err, sizeof(err)), 0);
    assert_int_equal(pgs_config_set(cfg, "profile.explain_timeout_ms", "200", err, sizeof(err)), 0);
    return cfg;
}

static void test_slots_and_cap(void **state)
{
    (void)state;
    pgs_config_t *cfg = config("1000", "0");
    pgs_profile_t *p = pgs_profile_new(cfg, "");
    int a = pgs_profile_slot(p, "commands", "patients", "UPDATE", 0);
    assert_int_equal(pgs_profile_slot(p, "commands", "patients", "UPDATE", 0), a);
    int b = pgs_profile_slot(p, "commands", "patients", "UPDATE", 1);
    assert_int_not_equal(a, b);
    assert_int_not_equal(pgs_profile_slot(p, "audit", "patients", "UPDATE", 0), a);
    /* past the cap every new shape shares its op and form's "other" row */
    char ent[32];
    for (int i = 0; i < PGS_PROFILE_MAX_SHAPES; i++) {
        snprintf(ent, sizeof(ent), "e%d", i);
        pgs_profile_slot(p, "commands", ent, "INSERT", 0);
    }
    int o1 = pgs_profile_slot(p, "commands", "late1", "INSERT", 0);
    int o2 = pgs_profile_slot(p, "commands", "late2", "INSERT", 0);
    assert_int_equal(o1, o2);
    assert_int_not_equal(pgs_profile_slot(p, "commands", "late1", "DELETE", 0), o1);
    /* the shapes seen before the cap keep their rows */
    assert_int_equal(pgs_profile_slot(p, "commands", "patients", "UPDATE", 0), a);
    pgs_sbuf_t sb = {0};
    pgs_profile_prom(p, &sb);
    assert_non_null(strstr(sb.buf, "entity=\"other\",op=\"INSERT\",form=\"single\""));
    assert_null(strstr(sb.buf, "late1"));
    free(sb.buf);
    pgs_profile_free(p);
    pgs_config_free(cfg);
}

static void test_counts_render(void **state)
{
    (void)state;
    pgs_config_t *cfg = config("1000", "0");
    pgs_profile_t *p = pgs_profile_new(cfg, "");
    int s = pgs_profile_slot(p, "commands", "patients", "INSERT", 1);
    pgs_profile_record(p, s, 3000, 40, 0);
    pgs_profile_record(p, s, 700000, 12, 0);
    pgs_profile_record(p, s, 1000, 0, 1);
    pgs_sbuf_t sb = {0};
    pgs_profile_prom(p, &sb);
    const char *want[] = {
        "# TYPE pgscribe_statement_latency_seconds histogram\n",
        "pgscribe_statement_latency_seconds_bucket{entity=\"patients\",op=\"INSERT\",form="
        "\"multi\","
        "le=\"0.005\"} 2\n",
        "pgscribe_statement_latency_seconds_bucket{entity=\"patients\",op=\"INSERT\",form="
        "\"multi\","
        "le=\"+Inf\"} 3\n",
        "pgscribe_statement_latency_seconds_count{entity=\"patients\",op=\"INSERT\",form=\"multi\"}"
        " "
        "3\n",
        "pgscribe_statement_executions_total{entity=\"patients\",op=\"INSERT\",form=\"multi\"} 3\n",
        "pgscribe_statement_rows_total{entity=\"patients\",op=\"INSERT\",form=\"multi\"} 52\n",
        "pgscribe_statement_errors_total{entity=\"patients\",op=\"INSERT\",form=\"multi\"} 1\n",
        "pgscribe_statement_explains_total{entity=\"patients\",op=\"INSERT\",form=\"multi\"} 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(sb.buf, want[i]))
            fail_msg("missing: %s\nin:\n%s", want[i], sb.buf);
    }
    free(sb.buf);
    sb = (pgs_sbuf_t){0};
    pgs_profile_json(p, "w-1", &sb);
    assert_non_null(strstr(sb.buf, "\"executions\": 3"));
    assert_non_null(strstr(sb.buf, "\"form\": \"multi\""));
    assert_non_null(strstr(sb.buf, "\"window_p99_ms\": null"));
    free(sb.buf);
    pgs_profile_free(p);
    pgs_config_free(cfg);
}

/* A slow window asks for one sample of its slowest shape only; once that
 * shape's EXPLAIN was started, another slow window within
 * profile.explain_interval_s asks for none (here the EXPLAIN fails: no
 * database, which is logged and not counted as an EXPLAIN). */
static void test_slow_window_rate_limit(void **state)
{
    (void)state;
    pgs_log_set_level(PGS_LOG_ERROR);
    pgs_config_t *cfg = config("100", "10");
    pgs_profile_t *p = pgs_profile_new(cfg, "host=/nonexistent-pgscribe-test connect_timeout=1");
    int slow = pgs_profile_slot(p, "commands", "patients", "UPDATE", 0);
    int fast = pgs_profile_slot(p, "commands", "patients", "INSERT", 0);
    int64_t now = pgs_clock_now_us();
    pgs_profile_record(p, fast, 2000, 1, 0);
    pgs_profile_tick(p, now + 150000);
    assert_false(pgs_profile_wants_sample(p, fast)); /* under the threshold */
    pgs_profile_record(p, slow, 50000, 1, 0);
    pgs_profile_record(p, fast, 30000, 1, 0);
    pgs_profile_tick(p, now + 300000);
    assert_true(pgs_profile_wants_sample(p, slow)); /* the slowest one */
    assert_false(pgs_profile_wants_sample(p, fast));
    const char *values[2] = {"clinic-1", NULL};
    int lengths[2] = {0, 0}, formats[2] = {0, 0};
    pgs_profile_offer_sample(p, slow, "SELECT $1::text, $2::int", "clinic-1", 2, values, lengths,
                             formats);
    assert_false(pgs_profile_wants_sample(p, slow));
    for (int i = 0; i < 300; i++) { /* the failed connect is taken */
        pgs_profile_tick(p, pgs_clock_now_us());
        usleep(10000);
    }
    assert_int_equal(pgs_profile_explains(p), 0);
    pgs_profile_record(p, slow, 80000, 1, 0);
    pgs_profile_tick(p, pgs_clock_now_us() + 500000);
    assert_false(pgs_profile_wants_sample(p, slow)); /* within the interval */
    assert_true(pgs_profile_wants_sample(p, fast) == 0);
    pgs_sbuf_t sb = {0};
    pgs_profile_json(p, "w-1", &sb);
    assert_non_null(strstr(sb.buf, "\"slow_windows\": 2"));
    free(sb.buf);
    pgs_profile_free(p);
    pgs_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_and_cap),
        cmocka_unit_test(test_counts_render),
        cmocka_unit_test(test_slow_window_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
