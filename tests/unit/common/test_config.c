/* Unit tests of the configuration table, file parser, reload and outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "common/cli.h"
#include "common/config.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pinning the key list here makes any change to the table a visible test
 * change, and lets the outputs be checked for completeness. */
static const char *const all_keys[] = {
    "worker.id",
    "consumer.group",
    "topic.commands",
    "topic.audit",
    "topic.commands_dlq",
    "topic.audit_dlq",
    "topic.metrics",
    "topic.traces",
    "pg.conninfo",
    "pg.schema",
    "pg.connect_timeout_ms",
    "pg.keepalives_idle_s",
    "pg.keepalives_interval_s",
    "pg.keepalives_count",
    "pg.tcp_user_timeout_ms",
    "pg.idle_in_transaction_timeout_ms",
    "pg.generic_plans",
    "apply.max_in_flight",
    "apply.adaptive_in_flight",
    "apply.max_batch",
    "apply.backlog_max",
    "apply.max_statements",
    "apply.multi_row_min",
    "apply.partition_window_max",
    "apply.statement_timeout_ms",
    "apply.statement_timeout_min_ms",
    "apply.lock_timeout_ms",
    "apply.timeout_factor",
    "retry.max_attempts",
    "retry.max_elapsed_ms",
    "retry.backoff_initial_ms",
    "retry.backoff_max_ms",
    "limits.clinic_rate",
    "limits.clinic_burst",
    "limits.overrides",
    "limits.clinic_quantum",
    "crypto.keyring",
    "breaker.failure_threshold",
    "breaker.probe_interval_ms",
    "audit.max_in_flight",
    "audit.max_batch",
    "audit.retention",
    "audit.archive_dir",
    "audit.maintenance_interval_ms",
    "audit.partitions_ahead",
    "audit.anchor_topic",
    "catalog.refresh_ms",
    "catalog.unknown_column_grace_ms",
    "metrics.interval_ms",
    "metrics.per_clinic",
    "metrics.per_clinic_max",
    "trace.sampling",
    "trace.ratio",
    "trace.flush_ms",
    "trace.batch_spans",
    "trace.max_buffered_spans",
    "trace.otlp_endpoint",
    "trace.otlp_queue_max",
    "trace.otlp_timeout_ms",
    "schema_registry.url",
    "schema_registry.basic_auth_user",
    "schema_registry.basic_auth_password",
    "schema_registry.ca_location",
    "schema_registry.tls_verify",
    "schema_registry.timeout_ms",
    "schema_registry.retry_max_ms",
    "http.listen",
    "shutdown.drain_timeout_ms",
    "resume.window",
    "log.level",
    "log.format",
    "log.slow_statement_ms",
    "profile.window_ms",
    "profile.slow_p99_ms",
    "profile.explain_interval_s",
    "profile.explain_timeout_ms",
    "produce.encoding",
};
#define NKEYS (sizeof(all_keys) / sizeof(all_keys[0]))

static char tmp_path[64];

static int setup(void **state)
{
    (void)state;
    unsetenv("PGSCRIBE_PG_CONNINFO");
    unsetenv("PGSCRIBE_CONFIG");
    tmp_path[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (tmp_path[0])
        unlink(tmp_path);
    unsetenv("PGSCRIBE_PG_CONNINFO");
    unsetenv("PGSCRIBE_CONFIG");
    return 0;
}

/* Writes @p text to a fresh file under /tmp; its path is in tmp_path. */
static const char *write_tmp(const char *text)
{
    if (tmp_path[0])
        unlink(tmp_path);
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/pgs_test_config_XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return tmp_path;
}

/* Loads @p text into a fresh config; the caller frees it. */
static pgs_config_t *load_text(const char *text, int *nerr, char *errstr, size_t size)
{
    pgs_config_t *cfg = pgs_config_new();
    assert_non_null(cfg);
    *nerr = pgs_config_load(cfg, write_tmp(text), errstr, size);
    return cfg;
}

/* Asserts that loading @p text gives exactly one error, @p msg on @p line. */
static void assert_one_error(const char *text, int line, const char *msg)
{
    char errstr[1024], want[1024];
    int nerr;
    pgs_config_t *cfg = load_text(text, &nerr, errstr, sizeof(errstr));
    snprintf(want, sizeof(want), "%s:%d: %s\n", tmp_path, line, msg);
    assert_string_equal(errstr, want);
    assert_int_equal(nerr, 1);
    pgs_config_free(cfg);
}

static char *capture_values(const pgs_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    pgs_config_print_values(cfg, fp);
    fclose(fp);
    return buf;
}

static char *capture_table(void (*fn)(FILE *fp))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    fn(fp);
    fclose(fp);
    return buf;
}

typedef struct {
    char text[1024];
    int count;
} kafka_seen_t;

static void collect_kafka(const char *name, const char *value, void *opaque)
{
    kafka_seen_t *seen = opaque;
    size_t used = strlen(seen->text);
    snprintf(seen->text + used, sizeof(seen->text) - used, "%s=%s;", name, value);
    seen->count++;
}

static void test_defaults(void **state)
{
    (void)state;
    pgs_config_t *cfg = pgs_config_new();
    assert_non_null(cfg);
    assert_string_equal(pgs_config_str(cfg, "worker.id"), "");
    assert_string_equal(pgs_config_str(cfg, "topic.commands"), "clinic.commands");
    assert_string_equal(pgs_config_str(cfg, "topic.audit"), "clinic.audit");
    assert_string_equal(pgs_config_str(cfg, "topic.commands_dlq"), "clinic.commands.dlq");
    assert_string_equal(pgs_config_str(cfg, "topic.audit_dlq"), "clinic.audit.dlq");
    assert_string_equal(pgs_config_str(cfg, "topic.metrics"), "pgscribe.metrics");
    assert_string_equal(pgs_config_str(cfg, "consumer.group"), "pgscribe");
    assert_string_equal(pgs_config_str(cfg, "pg.conninfo"), "");
    assert_string_equal(pgs_config_str(cfg, "pg.schema"), "clinic");
    assert_int_equal(pgs_config_int(cfg, "apply.max_in_flight"), 50);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 200);
    assert_int_equal(pgs_config_int(cfg, "apply.backlog_max"), 20000);
    assert_int_equal(pgs_config_int(cfg, "apply.partition_window_max"), 5000);
    assert_int_equal(pgs_config_int(cfg, "apply.statement_timeout_ms"), 30000);
    assert_int_equal(pgs_config_int(cfg, "apply.statement_timeout_min_ms"), 2000);
    assert_int_equal(pgs_config_int(cfg, "apply.lock_timeout_ms"), 5000);
    assert_true(pgs_config_double(cfg, "apply.timeout_factor") == 10.0);
    assert_int_equal(pgs_config_int(cfg, "retry.max_attempts"), 0);
    assert_int_equal(pgs_config_int(cfg, "retry.max_elapsed_ms"), 600000);
    assert_int_equal(pgs_config_int(cfg, "pg.connect_timeout_ms"), 5000);
    assert_int_equal(pgs_config_int(cfg, "pg.idle_in_transaction_timeout_ms"), 60000);
    assert_int_equal(pgs_config_int(cfg, "retry.backoff_initial_ms"), 100);
    assert_int_equal(pgs_config_int(cfg, "retry.backoff_max_ms"), 30000);
    assert_int_equal(pgs_config_int(cfg, "breaker.failure_threshold"), 5);
    assert_int_equal(pgs_config_int(cfg, "breaker.probe_interval_ms"), 5000);
    assert_int_equal(pgs_config_int(cfg, "audit.max_in_flight"), 4);
    assert_int_equal(pgs_config_int(cfg, "audit.max_batch"), 500);
    assert_int_equal(pgs_config_int(cfg, "shutdown.drain_timeout_ms"), 30000);
    assert_int_equal(pgs_config_int(cfg, "metrics.interval_ms"), 10000);
    assert_string_equal(pgs_config_str(cfg, "log.level"), "info");
    assert_int_equal(pgs_config_int(cfg, "log.slow_statement_ms"), 1000);
    assert_string_equal(pgs_config_str(cfg, "produce.encoding"), "avro");
    assert_int_equal(pgs_config_bool(cfg, "metrics.per_clinic"), 1);
    kafka_seen_t seen = {{0}, 0};
    pgs_config_kafka_foreach(cfg, collect_kafka, &seen);
    assert_int_equal(seen.count, 0);
    pgs_config_free(cfg);
}

static void test_valid_file(void **state)
{
    (void)state;
    char errstr[1024];
    int nerr;
    pgs_config_t *cfg = load_text("# comment\n"
                                  "; another comment\n"
                                  "log.level = debug\n"
                                  "kafka.client.id = top-level\n"
                                  "\n"
                                  "[apply]\n"
                                  "  max_batch = 0250\n"
                                  "max_in_flight: 8 ; inline comment\n"
                                  "[kafka]\n"
                                  "bootstrap.servers = 127.0.0.1:9092\n"
                                  "    linger.ms = 5\n"
                                  "client.id = again\n"
                                  "[apply]\n"
                                  "timeout_factor = 2.50\n"
                                  "[metrics]\n"
                                  "per_clinic = OFF\n"
                                  "[worker]\n"
                                  "id = w-1\n",
                                  &nerr, errstr, sizeof(errstr));
    assert_string_equal(errstr, "");
    assert_int_equal(nerr, 0);
    assert_string_equal(pgs_config_str(cfg, "log.level"), "debug");
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 250);
    assert_int_equal(pgs_config_int(cfg, "apply.max_in_flight"), 8);
    assert_true(pgs_config_double(cfg, "apply.timeout_factor") == 2.5);
    assert_int_equal(pgs_config_bool(cfg, "metrics.per_clinic"), 0);
    assert_string_equal(pgs_config_str(cfg, "worker.id"), "w-1");

    /* file order, prefix removed; a repeated key keeps its first place */
    kafka_seen_t seen = {{0}, 0};
    pgs_config_kafka_foreach(cfg, collect_kafka, &seen);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.text, "client.id=again;bootstrap.servers=127.0.0.1:9092;linger.ms=5;");

    /* values are shown in canonical form */
    char *out = capture_values(cfg);
    assert_non_null(strstr(out, "\napply.max_batch = 250\n"));
    assert_non_null(strstr(out, "\napply.timeout_factor = 2.5\n"));
    assert_non_null(strstr(out, "\nmetrics.per_clinic = false\n"));
    assert_non_null(strstr(out, "\nkafka.linger.ms = 5\n"));
    free(out);
    pgs_config_free(cfg);
}

static void test_unknown_key(void **state)
{
    (void)state;
    assert_one_error("# x\n[foo]\nbar = 1\n", 3, "unknown key 'foo.bar'");
    assert_one_error("apply.max_batchh = 1\n", 1, "unknown key 'apply.max_batchh'");
    assert_one_error("[kafka]\nbootstrap.servers = x\n[]\nkafka. = 1\n", 4,
                     "empty kafka property name after 'kafka.'");

    /* keys of features pgscribe does not implement are not accepted */
    static const char *const gone[] = {
        "ratelimit.clinic_per_sec", "ratelimit.clinic_burst", "registry.url",
        "registry.basic_auth",      "audit.retention_months", "metrics.listen",
    };
    pgs_config_t *cfg = pgs_config_new();
    char errstr[256], want[256];
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        assert_int_equal(pgs_config_set(cfg, gone[i], "1", errstr, sizeof(errstr)), -1);
        snprintf(want, sizeof(want), "unknown key '%s'", gone[i]);
        assert_string_equal(errstr, want);
    }
    pgs_config_free(cfg);
}

static void test_bad_types(void **state)
{
    (void)state;
    assert_one_error("\n[apply]\nmax_batch = ten\n", 3,
                     "apply.max_batch: 'ten' is not an integer (expected 1..1000)");
    assert_one_error("apply.max_batch = 12abc\n", 1,
                     "apply.max_batch: '12abc' is not an integer (expected 1..1000)");
    assert_one_error("apply.max_batch =\n", 1,
                     "apply.max_batch: '' is not an integer (expected 1..1000)");
    assert_one_error("apply.timeout_factor = fast\n", 1,
                     "apply.timeout_factor: 'fast' is not a number (expected 1..1000)");
    assert_one_error("apply.timeout_factor = nan\n", 1,
                     "apply.timeout_factor: 'nan' is not a number (expected 1..1000)");
    assert_one_error("metrics.per_clinic = maybe\n", 1,
                     "metrics.per_clinic: 'maybe' is not a boolean "
                     "(expected true|false|yes|no|on|off|1|0)");
}

static void test_bounds(void **state)
{
    (void)state;
    assert_one_error("apply.max_batch = 1001\n", 1,
                     "apply.max_batch: '1001' is out of range (expected 1..1000)");
    assert_one_error("apply.max_batch = 0\n", 1,
                     "apply.max_batch: '0' is out of range (expected 1..1000)");
    assert_one_error("apply.backlog_max = 99999999999999999999\n", 1,
                     "apply.backlog_max: '99999999999999999999' is out of range "
                     "(expected 100..1000000)");
    assert_one_error("apply.timeout_factor = 0.5\n", 1,
                     "apply.timeout_factor: '0.5' is out of range (expected 1..1000)");
    assert_one_error("apply.timeout_factor = 1000.5\n", 1,
                     "apply.timeout_factor: '1000.5' is out of range (expected 1..1000)");

    /* both ends are inclusive */
    char errstr[256];
    int nerr;
    pgs_config_t *cfg = load_text("apply.max_batch = 1000\napply.max_in_flight = 1\n"
                                  "apply.timeout_factor = 1\n",
                                  &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 1000);
    assert_int_equal(pgs_config_int(cfg, "apply.max_in_flight"), 1);
    assert_true(pgs_config_double(cfg, "apply.timeout_factor") == 1.0);
    pgs_config_free(cfg);
    cfg = load_text("apply.timeout_factor = 1e3\n", &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_true(pgs_config_double(cfg, "apply.timeout_factor") == 1000.0);
    pgs_config_free(cfg);
}

static void test_enum(void **state)
{
    (void)state;
    assert_one_error("[log]\nlevel = verbose\n", 2,
                     "log.level: 'verbose' is not one of debug|info|warn|error");
    /* values are exact: no prefix, no case folding */
    assert_one_error("log.level = inf\n", 1,
                     "log.level: 'inf' is not one of debug|info|warn|error");
    assert_one_error("produce.encoding = JSON\n", 1,
                     "produce.encoding: 'JSON' is not one of avro|json");
    char errstr[256];
    int nerr;
    pgs_config_t *cfg =
        load_text("log.level = error\nproduce.encoding = json\n", &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_string_equal(pgs_config_str(cfg, "log.level"), "error");
    assert_string_equal(pgs_config_str(cfg, "produce.encoding"), "json");
    pgs_config_free(cfg);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    assert_one_error("[apply\nmax_batch = 5\n", 1, "section header without closing ']'");
    assert_one_error("\n\nlog.level debug\n", 3, "expected 'key = value'");
    /* keys under the broken header are not reported again; the next good
     * header ends the skipping */
    char errstr[512], want[512];
    int nerr;
    pgs_config_t *cfg =
        load_text("[apply\nmax_batch = 5\n[log]\nlevel = loud\n", &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 2);
    snprintf(want, sizeof(want),
             "%1$s:1: section header without closing ']'\n"
             "%1$s:4: log.level: 'loud' is not one of debug|info|warn|error\n",
             tmp_path);
    assert_string_equal(errstr, want);
    pgs_config_free(cfg);
    assert_one_error("= 5\n", 1, "missing key name before '='");
    char line[400];
    memset(line, 'x', sizeof(line));
    memcpy(line, "pg.conninfo = ", 14);
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    assert_one_error(line, 1, "line longer than 199 characters");
}

static void test_multiple_errors(void **state)
{
    (void)state;
    char errstr[2048], want[2048];
    int nerr;
    pgs_config_t *cfg = load_text("[apply]\n"
                                  "max_batch = 0\n"
                                  "bogus = 1\n"
                                  "max_in_flight = 10\n"
                                  "[log]\n"
                                  "level = loud\n"
                                  "garbage\n",
                                  &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 4);
    snprintf(want, sizeof(want),
             "%1$s:2: apply.max_batch: '0' is out of range (expected 1..1000)\n"
             "%1$s:3: unknown key 'apply.bogus'\n"
             "%1$s:6: log.level: 'loud' is not one of debug|info|warn|error\n"
             "%1$s:7: expected 'key = value'\n",
             tmp_path);
    assert_string_equal(errstr, want);
    /* the valid line between the errors was still applied */
    assert_int_equal(pgs_config_int(cfg, "apply.max_in_flight"), 10);
    pgs_config_free(cfg);

    /* a short buffer truncates the text, never the count */
    char small[40];
    cfg = load_text("a = 1\nb = 2\nc = 3\n", &nerr, small, sizeof(small));
    assert_int_equal(nerr, 3);
    assert_true(strlen(small) < sizeof(small));
    assert_memory_equal(small, tmp_path, strlen(tmp_path));
    pgs_config_free(cfg);
}

static void test_cross_key_and_open_errors(void **state)
{
    (void)state;
    char errstr[512], want[512];
    int nerr;
    pgs_config_t *cfg = load_text("[retry]\nbackoff_initial_ms = 5000\nbackoff_max_ms = 1000\n",
                                  &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 1);
    snprintf(want, sizeof(want),
             "%s: retry.backoff_initial_ms must not exceed retry.backoff_max_ms\n", tmp_path);
    assert_string_equal(errstr, want);
    pgs_config_free(cfg);

    cfg = load_text("[apply]\nstatement_timeout_ms = 1000\nstatement_timeout_min_ms = 1001\n",
                    &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 1);
    snprintf(want, sizeof(want),
             "%s: apply.statement_timeout_min_ms must not exceed apply.statement_timeout_ms\n",
             tmp_path);
    assert_string_equal(errstr, want);
    pgs_config_free(cfg);

    /* equal bounds are fine, and 0 disables the timeouts so any minimum goes */
    cfg = load_text("[apply]\nstatement_timeout_ms = 1000\nstatement_timeout_min_ms = 1000\n"
                    "[retry]\nbackoff_initial_ms = 1000\nbackoff_max_ms = 1000\n",
                    &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    pgs_config_free(cfg);
    cfg = load_text("[apply]\nstatement_timeout_ms = 0\nstatement_timeout_min_ms = 60000\n", &nerr,
                    errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_string_equal(errstr, "");
    pgs_config_free(cfg);

    /* both relations broken: both reported */
    cfg = load_text("retry.backoff_initial_ms = 50000\napply.statement_timeout_min_ms = 40000\n",
                    &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 2);
    snprintf(want, sizeof(want),
             "%1$s: retry.backoff_initial_ms must not exceed retry.backoff_max_ms\n"
             "%1$s: apply.statement_timeout_min_ms must not exceed apply.statement_timeout_ms\n",
             tmp_path);
    assert_string_equal(errstr, want);
    pgs_config_free(cfg);

    cfg = pgs_config_new();
    nerr = pgs_config_load(cfg, "/nonexistent/pgscribe.conf", errstr, sizeof(errstr));
    assert_int_equal(nerr, 1);
    assert_string_equal(errstr,
                        "/nonexistent/pgscribe.conf: cannot open: No such file or directory\n");
    pgs_config_free(cfg);
}

static void test_set(void **state)
{
    (void)state;
    char errstr[256];
    pgs_config_t *cfg = pgs_config_new();
    assert_int_equal(pgs_config_set(cfg, "apply.max_batch", "7", errstr, sizeof(errstr)), 0);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 7);
    assert_int_equal(pgs_config_set(cfg, "apply.max_batch", "7000", errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "apply.max_batch: '7000' is out of range (expected 1..1000)");
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 7);
    assert_int_equal(pgs_config_set(cfg, "nope", "1", errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "unknown key 'nope'");
    assert_int_equal(pgs_config_set(cfg, "kafka.acks", "all", errstr, sizeof(errstr)), 0);
    kafka_seen_t seen = {{0}, 0};
    pgs_config_kafka_foreach(cfg, collect_kafka, &seen);
    assert_string_equal(seen.text, "acks=all;");
    pgs_config_free(cfg);
}

static void test_env_override(void **state)
{
    (void)state;
    setenv("PGSCRIBE_PG_CONNINFO", "host=/tmp/env dbname=envdb", 1);
    pgs_config_t *cfg = pgs_config_new();
    assert_string_equal(pgs_config_str(cfg, "pg.conninfo"), "host=/tmp/env dbname=envdb");
    char errstr[256];
    int nerr = pgs_config_load(cfg, write_tmp("[pg]\nconninfo = host=/tmp/file\n"), errstr,
                               sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_string_equal(pgs_config_str(cfg, "pg.conninfo"), "host=/tmp/env dbname=envdb");
    pgs_config_free(cfg);

    /* without the variable (or with it empty) the file wins */
    setenv("PGSCRIBE_PG_CONNINFO", "", 1);
    cfg = pgs_config_new();
    nerr = pgs_config_load(cfg, tmp_path, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    assert_string_equal(pgs_config_str(cfg, "pg.conninfo"), "host=/tmp/file");
    pgs_config_free(cfg);
}

static void test_masking(void **state)
{
    (void)state;
    char errstr[256];
    int nerr;
    pgs_config_t *cfg = load_text("pg.conninfo = host=db password='s3 \\'cr' dbname=clinic\n"
                                  "[kafka]\n"
                                  "sasl.oauthbearer.token.endpoint.url = "
                                  "https://idp:hunter2@idp.example:8443/token\n"
                                  "sasl.username = pgscribe\n"
                                  "sasl.password = kafkapw\n"
                                  "ssl.key.password = keypw\n"
                                  "sasl.oauthbearer.client.secret = oauthpw\n",
                                  &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    char *out = capture_values(cfg);
    assert_non_null(strstr(out, "\npg.conninfo = host=db password=***** dbname=clinic\n"));
    assert_non_null(strstr(out, "\nkafka.sasl.oauthbearer.token.endpoint.url = "
                                "https://idp:*****@idp.example:8443/token\n"));
    /* librdkafka marks sasl.username sensitive too */
    assert_non_null(strstr(out, "\nkafka.sasl.username = *****\n"));
    assert_non_null(strstr(out, "\nkafka.sasl.password = *****\n"));
    assert_non_null(strstr(out, "\nkafka.ssl.key.password = *****\n"));
    assert_non_null(strstr(out, "\nkafka.sasl.oauthbearer.client.secret = *****\n"));
    const char *leaks[] = {"s3", "cr'", "hunter2", "kafkapw", "keypw", "oauthpw"};
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++)
        assert_null(strstr(out, leaks[i]));
    free(out);
    /* the getters still give the real values */
    assert_string_equal(pgs_config_str(cfg, "pg.conninfo"),
                        "host=db password='s3 \\'cr' dbname=clinic");
    kafka_seen_t seen = {{0}, 0};
    pgs_config_kafka_foreach(cfg, collect_kafka, &seen);
    assert_non_null(strstr(seen.text, ";sasl.password=kafkapw;"));
    pgs_config_free(cfg);

    /* an empty conninfo shows as empty, so an operator sees it is unset */
    cfg = pgs_config_new();
    out = capture_values(cfg);
    assert_non_null(strstr(out, "\npg.conninfo = \n"));
    free(out);
    pgs_config_free(cfg);

    /* URI conninfo and a password as a query parameter */
    setenv("PGSCRIBE_PG_CONNINFO",
           "postgresql://pgscribe:uripw@db:5432/clinic?sslmode=verify-full&password=qpw", 1);
    cfg = pgs_config_new();
    out = capture_values(cfg);
    assert_non_null(strstr(out, "\npg.conninfo = postgresql://pgscribe:*****@db:5432/clinic"
                                "?sslmode=verify-full&password=*****\n"));
    assert_null(strstr(out, "uripw"));
    assert_null(strstr(out, "qpw"));
    free(out);
    pgs_config_free(cfg);
}

/* Every conninfo option whose dispchar is "*" and every property librdkafka
 * marks sensitive is masked, whatever its spelling. */
static void test_masking_sensitive_keys(void **state)
{
    (void)state;
    char errstr[256];
    int nerr;
    unsetenv("PGSCRIBE_PG_CONNINFO");
    pgs_config_t *cfg =
        load_text("pg.conninfo = host=db sslpassword = 'ssl pw1' password=pw2 dbname=clinic\n"
                  "[kafka]\n"
                  "client.rack = postgresql://db/clinic?sslpassword=pw3&user=admin\n"
                  "ssl.key.pem = -----BEGIN PRIVATE KEY-----pw4\n"
                  "ssl.ca.pem = pw5\n"
                  "sasl.oauthbearer.config = principal=admin secretpw6\n"
                  "ssl.key.location = /keys/pw7.pem\n"
                  "SSL.KEYSTORE.PASSWORD = pw8\n"
                  "[kafka.producer]\n"
                  "sasl.password = pw9\n"
                  "linger.ms = 5\n",
                  &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);
    char *out = capture_values(cfg);
    assert_non_null(strstr(out, "\npg.conninfo = host=db sslpassword=***** password=***** "
                                "dbname=clinic\n"));
    assert_non_null(
        strstr(out, "\nkafka.client.rack = postgresql://db/clinic?sslpassword=*****&user=admin\n"));
    assert_non_null(strstr(out, "\nkafka.ssl.key.pem = *****\n"));
    assert_non_null(strstr(out, "\nkafka.sasl.oauthbearer.config = *****\n"));
    assert_non_null(strstr(out, "linger.ms = 5\n"));
    const char *leaks[] = {"pw1", "pw2", "pw3", "pw4", "pw5", "pw6", "pw7", "pw8", "pw9"};
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
        if (strstr(out, leaks[i]))
            fail_msg("%s leaked in:\n%s", leaks[i], out);
    }
    free(out);
    pgs_config_free(cfg);

    assert_true(pgs_config_kafka_sensitive("ssl_key"));
    assert_true(pgs_config_kafka_sensitive("sasl.oauthbearer.client.secret"));
    assert_false(pgs_config_kafka_sensitive("bootstrap.servers"));
    assert_true(pgs_config_value_secret("host=db password=x"));
    assert_true(pgs_config_value_secret("https://u:p@h/"));
    assert_false(pgs_config_value_secret("host=db user=w"));
    assert_false(pgs_config_value_secret("clinic.commands"));
}

/* The worker's start-up check: a file holding a secret is flagged only when
 * its group or others may read it, and the reason names the key, never the
 * value. */
static void test_secret_file_mode(void **state)
{
    (void)state;
    char why[256] = "";
    int nerr;
    char errstr[256];
    pgs_config_t *cfg =
        load_text("[pg]\nconninfo = host=db password=filepw\n", &nerr, errstr, sizeof(errstr));
    pgs_config_free(cfg);
    assert_int_equal(chmod(tmp_path, 0600), 0);
    assert_int_equal(pgs_config_file_secret_exposed(tmp_path, why, sizeof(why)), 0);
    assert_int_equal(chmod(tmp_path, 0640), 0);
    assert_int_equal(pgs_config_file_secret_exposed(tmp_path, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "pg.conninfo"));
    assert_non_null(strstr(why, "0640"));
    assert_null(strstr(why, "filepw"));
    assert_int_equal(chmod(tmp_path, 0604), 0);
    assert_int_equal(pgs_config_file_secret_exposed(tmp_path, why, sizeof(why)), 1);

    cfg = load_text("[kafka]\nsasl.password = kpw\n", &nerr, errstr, sizeof(errstr));
    pgs_config_free(cfg);
    assert_int_equal(chmod(tmp_path, 0644), 0);
    assert_int_equal(pgs_config_file_secret_exposed(tmp_path, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "kafka.sasl.password"));
    assert_null(strstr(why, "kpw"));

    /* no secret in the file (the password comes from the environment) */
    cfg = load_text("[pg]\nconninfo = host=db dbname=clinic\n[kafka]\nacks = all\n", &nerr, errstr,
                    sizeof(errstr));
    pgs_config_free(cfg);
    assert_int_equal(chmod(tmp_path, 0644), 0);
    assert_int_equal(pgs_config_file_secret_exposed(tmp_path, why, sizeof(why)), 0);
    assert_int_equal(pgs_config_file_secret_exposed(NULL, why, sizeof(why)), 0);
}

static void test_reload(void **state)
{
    (void)state;
    char errstr[1024];
    pgs_config_t *cur = pgs_config_new();
    assert_int_equal(
        pgs_config_set(cur, "kafka.bootstrap.servers", "a:9092", errstr, sizeof(errstr)), 0);
    assert_int_equal(pgs_config_set(cur, "kafka.acks", "all", errstr, sizeof(errstr)), 0);
    int nerr;
    pgs_config_t *next = load_text("[log]\nlevel = debug\n"
                                   "[metrics]\ninterval_ms = 500\nper_clinic = no\n"
                                   "[worker]\nid = w2\n"
                                   "[apply]\nmax_batch = 10\ntimeout_factor = 2.5\n"
                                   "[audit]\nmax_batch = 50\n"
                                   "[kafka]\nbootstrap.servers = b:9092\nacks = all\n",
                                   &nerr, errstr, sizeof(errstr));
    assert_int_equal(nerr, 0);

    int kept = pgs_config_reload(cur, next, errstr, sizeof(errstr));
    assert_int_equal(kept, 4);
    assert_string_equal(errstr, "worker.id: not reloadable, restart to apply\n"
                                "apply.max_batch: not reloadable, restart to apply\n"
                                "audit.max_batch: not reloadable, restart to apply\n"
                                "kafka.bootstrap.servers: not reloadable, restart to apply\n");
    assert_string_equal(pgs_config_str(cur, "log.level"), "debug");
    assert_int_equal(pgs_config_int(cur, "metrics.interval_ms"), 500);
    assert_int_equal(pgs_config_bool(cur, "metrics.per_clinic"), 0);
    assert_string_equal(pgs_config_str(cur, "worker.id"), "");
    assert_int_equal(pgs_config_int(cur, "apply.max_batch"), 200);
    assert_int_equal(pgs_config_int(cur, "audit.max_batch"), 500);
    assert_true(pgs_config_double(cur, "apply.timeout_factor") == 2.5);
    kafka_seen_t seen = {{0}, 0};
    pgs_config_kafka_foreach(cur, collect_kafka, &seen);
    assert_string_equal(seen.text, "bootstrap.servers=a:9092;acks=all;");

    /* same values again: nothing to report */
    pgs_config_free(cur);
    cur = pgs_config_new();
    pgs_config_t *same = pgs_config_new();
    assert_int_equal(pgs_config_reload(cur, same, errstr, sizeof(errstr)), 0);
    assert_string_equal(errstr, "");
    /* a kafka key only in the running config also needs a restart */
    assert_int_equal(pgs_config_set(cur, "kafka.acks", "1", errstr, sizeof(errstr)), 0);
    assert_int_equal(pgs_config_reload(cur, same, errstr, sizeof(errstr)), 1);
    assert_string_equal(errstr, "kafka.acks: not reloadable, restart to apply\n");
    pgs_config_free(same);
    pgs_config_free(next);
    pgs_config_free(cur);
}

static void test_help_and_markdown(void **state)
{
    (void)state;
    char *md = capture_table(pgs_config_print_markdown);
    char *help = capture_table(pgs_config_print_help);
    char needle[128];
    for (size_t i = 0; i < NKEYS; i++) {
        snprintf(needle, sizeof(needle), "\n| `%s` | ", all_keys[i]);
        assert_non_null(strstr(md, needle));
        snprintf(needle, sizeof(needle), "%s (", all_keys[i]);
        assert_non_null(strstr(help, needle));
    }
    /* one row per key, plus kafka.*, header and separator: no extra keys */
    size_t rows = 0;
    for (const char *p = md; (p = strstr(p, "\n| ")) != NULL; p++)
        rows++;
    assert_int_equal(rows, NKEYS + 3);
    assert_non_null(strstr(md, "| `apply.max_batch` | int | `200` | 1..1000 | no | "));
    assert_non_null(strstr(md, "| `log.level` | enum | `info` | `debug`, `info`, `warn`, "
                               "`error` | yes | "));
    assert_non_null(strstr(md, "| `apply.timeout_factor` | double | `10` | 1..1000 | yes | "));
    assert_non_null(strstr(help, "apply.statement_timeout_ms (int, default \"30000\", range "
                                 "0..3600000, reloadable)\n    "));
    assert_non_null(strstr(help, "audit.max_in_flight (int, default \"4\", range 1..100, "
                                 "restart to change)\n    "));
    free(md);
    free(help);
}

/* Every key printed by print_values (the table's keys, in order). */
static void assert_values_list_all_keys(const pgs_config_t *cfg)
{
    char *out = capture_values(cfg);
    const char *p = out;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t n = strlen(all_keys[i]);
        assert_memory_equal(p, all_keys[i], n);
        assert_memory_equal(p + n, " = ", 3);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    free(out);
}

typedef struct {
    char keys[NKEYS][64];
    int seen[NKEYS];
} sample_keys_t;

static int sample_handler(void *user, const char *section, const char *name, const char *value)
{
    (void)value;
    sample_keys_t *sk = user;
    char full[128];
    snprintf(full, sizeof(full), "%s.%s", section, name);
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(full, all_keys[i]) == 0)
            sk->seen[i]++;
    return 1;
}

static void test_sample_config_file(void **state)
{
    (void)state;
    char path[512], errstr[1024];
    snprintf(path, sizeof(path), "%s/config/pgscribe.conf", PGS_SOURCE_DIR);

    /* every key written out once, and the file spells the defaults */
    sample_keys_t sk;
    memset(&sk, 0, sizeof(sk));
    assert_int_equal(ini_parse(path, sample_handler, &sk), 0);
    for (size_t i = 0; i < NKEYS; i++) {
        if (sk.seen[i] != 1)
            fail_msg("%s appears %d times in %s", all_keys[i], sk.seen[i], path);
    }

    pgs_config_t *defaults = pgs_config_new();
    pgs_config_t *cfg = pgs_config_new();
    assert_int_equal(pgs_config_load(cfg, path, errstr, sizeof(errstr)), 0);
    assert_values_list_all_keys(defaults);
    char *want_base = capture_values(defaults);
    char want[8192];
    snprintf(want, sizeof(want), "%skafka.bootstrap.servers = 127.0.0.1:9092\n", want_base);
    char *got = capture_values(cfg);
    assert_string_equal(got, want);
    free(got);
    free(want_base);
    pgs_config_free(cfg);
    pgs_config_free(defaults);
}

static void test_reference_doc_matches(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/docs/config-reference.md", PGS_SOURCE_DIR);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char doc[32768];
    size_t n = fread(doc, 1, sizeof(doc) - 1, fp);
    fclose(fp);
    doc[n] = '\0';
    char *md = capture_table(pgs_config_print_markdown);
    if (strcmp(doc, md) != 0)
        fail_msg("%s is stale: regenerate it with `pgscribe check-config --markdown`", path);
    free(md);
}

static void test_cli_load_config(void **state)
{
    (void)state;
    struct pgs_config_s *cfg = pgs_cli_load_config(write_tmp("apply.max_batch = 9\n"));
    assert_non_null(cfg);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 9);
    pgs_config_free(cfg);

    /* $PGSCRIBE_CONFIG when no path is given, else defaults only */
    setenv("PGSCRIBE_CONFIG", tmp_path, 1);
    cfg = pgs_cli_load_config(NULL);
    assert_non_null(cfg);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 9);
    pgs_config_free(cfg);
    unsetenv("PGSCRIBE_CONFIG");
    cfg = pgs_cli_load_config(NULL);
    assert_non_null(cfg);
    assert_int_equal(pgs_config_int(cfg, "apply.max_batch"), 200);
    pgs_config_free(cfg);

    assert_null(pgs_cli_load_config(write_tmp("apply.max_batch = 0\n")));
}

static void test_cmd_check_config(void **state)
{
    (void)state;
    char *good[] = {"check-config", "-c", (char *)write_tmp("log.level = warn\n"), NULL};
    assert_int_equal(pgs_cmd_check_config(3, good), PGS_EXIT_OK);
    char *bad[] = {"check-config", "--config", (char *)write_tmp("log.level = loud\n"), NULL};
    assert_int_equal(pgs_cmd_check_config(3, bad), PGS_EXIT_CONFIG);
    char *usage[] = {"check-config", "--bogus", NULL};
    assert_int_equal(pgs_cmd_check_config(2, usage), PGS_EXIT_USAGE);
    char *extra[] = {"check-config", "stray", NULL};
    assert_int_equal(pgs_cmd_check_config(2, extra), PGS_EXIT_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_key_and_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masking_sensitive_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_and_markdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reference_doc_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_load_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_check_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
