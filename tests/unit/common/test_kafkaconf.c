/* Unit tests for the librdkafka configuration builder: precedence of the
 * sources and the consumer/producer scoped keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/kafkaconf.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scoped_keys_reach_their_role_only),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_bad_property_names_the_key_not_the_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
