/* Unit tests for the librdkafka configuration builder: precedence of the
 * sources and the consumer/producer scoped keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/kafkaconf.h"
#include "common/log.h"

static pgs_config_t *cfg_with(const char *const *kv)
{
    pgs_config_t *cfg = pgs_config_new();
    char err[256];
    for (size_t i = 0; kv[i]; i += 2)
        assert_int_equal(pgs_config_set(cfg, kv[i], kv[i + 1], err, sizeof(err)), 0);
    return cfg;
}

/* @returns the property's value in @p conf, or "" when unset. */
static const char *get(rd_kafka_conf_t *conf, const char *name)
{
    static char buf[512];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK)
        return "";
    return buf;
}

static void test_scoped_keys_reach_their_role_only(void **state)
{
    (void)state;
    static const char *const kv[] = {"kafka.client.id",
                                     "shared",
                                     "kafka.consumer.session.timeout.ms",
                                     "6000",
                                     "kafka.producer.linger.ms",
                                     "25",
                                     NULL};
    pgs_config_t *cfg = cfg_with(kv);
    char err[256];

    rd_kafka_conf_t *c = pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(get(c, "client.id"), "shared");
    assert_string_equal(get(c, "session.timeout.ms"), "6000");
    assert_string_not_equal(get(c, "linger.ms"), "25");
    rd_kafka_conf_destroy(c);

    rd_kafka_conf_t *p = pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, NULL, NULL, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(get(p, "client.id"), "shared");
    assert_string_equal(get(p, "linger.ms"), "25");
    assert_string_not_equal(get(p, "session.timeout.ms"), "6000");
    rd_kafka_conf_destroy(p);

    rd_kafka_conf_t *a = pgs_kafkaconf_new(cfg, PGS_KAFKA_ADMIN, NULL, NULL, err, sizeof(err));
    assert_non_null(a);
    assert_string_equal(get(a, "client.id"), "shared");
    assert_string_not_equal(get(a, "linger.ms"), "25");
    assert_string_not_equal(get(a, "session.timeout.ms"), "6000");
    rd_kafka_conf_destroy(a);
    pgs_config_free(cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    static const char *const kv[] = {"kafka.linger.ms", "7", NULL};
    pgs_config_t *cfg = cfg_with(kv);
    static const char *const defaults[] = {"linger.ms", "5", "batch.num.messages", "123", NULL};
    char err[256];
    setenv("PGSCRIBE_KAFKA", "env-host:9092", 1);

    rd_kafka_conf_t *p =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, defaults, NULL, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(get(p, "bootstrap.servers"), "env-host:9092");
    assert_string_equal(get(p, "linger.ms"), "7");            /* the file beats a default */
    assert_string_equal(get(p, "batch.num.messages"), "123"); /* a default stays */
    rd_kafka_conf_destroy(p);

    p = pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, defaults, "opt-host:9092", err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(get(p, "bootstrap.servers"), "opt-host:9092"); /* --brokers wins */
    rd_kafka_conf_destroy(p);
    unsetenv("PGSCRIBE_KAFKA");
    pgs_config_free(cfg);
}

static void test_bad_property_names_the_key_not_the_value(void **state)
{
    (void)state;
    static const char *const kv[] = {"kafka.consumer.no.such.property", "s3cret-value", NULL};
    pgs_config_t *cfg = cfg_with(kv);
    char err[256];

    /* not for producers: never handed to librdkafka there */
    rd_kafka_conf_t *p = pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, NULL, NULL, err, sizeof(err));
    assert_non_null(p);
    rd_kafka_conf_destroy(p);

    err[0] = '\0';
    assert_null(pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "kafka.consumer.no.such.property"));
    assert_null(strstr(err, "s3cret-value"));
    pgs_config_free(cfg);
}

/* Runs @p fn with stderr sent to a temporary file; @returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
    fflush(stderr);
    char path[] = "/tmp/pgs_test_kafkalog_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static void levels(void)
{
    pgs_log_set_level(PGS_LOG_DEBUG);
    pgs_kafkaconf_log_cb(NULL, 3, "FAIL", "three");
    pgs_kafkaconf_log_cb(NULL, 4, "GETPID", "four");
    pgs_kafkaconf_log_cb(NULL, 6, "INFO", "six");
    pgs_kafkaconf_log_cb(NULL, 7, "BROKER", "seven");
    pgs_log_set_level(PGS_LOG_INFO);
}

static void test_log_cb_maps_syslog_levels(void **state)
{
    (void)state;
    char *out = capture_stderr(levels);
    assert_non_null(
        strstr(out, "level=error worker=- module=kafka msg=\"three\" fac=FAIL name=-\n"));
    assert_non_null(
        strstr(out, "level=warn worker=- module=kafka msg=\"four\" fac=GETPID name=-\n"));
    assert_non_null(strstr(out, "level=info worker=- module=kafka msg=\"six\" fac=INFO name=-\n"));
    assert_non_null(
        strstr(out, "level=debug worker=- module=kafka msg=\"seven\" fac=BROKER name=-\n"));
}

/* A real handle built from pgs_kafkaconf_new logs through the writer, never
 * with librdkafka's own `%N|` lines. */
static void handle_with_debug_logs(void)
{
    static const char *const kv[] = {"kafka.debug", "generic", "kafka.log_level", "7", NULL};
    pgs_config_t *cfg = cfg_with(kv);
    char err[256];
    rd_kafka_conf_t *c = pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, NULL, NULL, err, sizeof(err));
    assert_non_null(c);
    pgs_log_set_level(PGS_LOG_DEBUG);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_destroy(rk);
    pgs_log_set_level(PGS_LOG_INFO);
    pgs_config_free(cfg);
}

static void test_handles_log_through_the_writer(void **state)
{
    (void)state;
    char *out = capture_stderr(handle_with_debug_logs);
    assert_non_null(strstr(out, "module=kafka"));
    assert_non_null(strstr(out, " fac="));
    assert_null(strstr(out, "%7|"));
    assert_true(out[0] == '\0' || strncmp(out, "ts=", 3) == 0);
    for (char *p = strchr(out, '\n'); p && p[1]; p = strchr(p + 1, '\n'))
        assert_true(strncmp(p + 1, "ts=", 3) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scoped_keys_reach_their_role_only),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_bad_property_names_the_key_not_the_value),
        cmocka_unit_test(test_log_cb_maps_syslog_levels),
        cmocka_unit_test(test_handles_log_through_the_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
