/* librdkafka configuration from pgscribe's config, environment and options. */
#include "common/kafkaconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

typedef struct {
    rd_kafka_conf_t *conf;
    char *errstr;
    size_t errstr_size;
    pgs_kafka_role_t role;
    int failed;
} conf_ctx_t;

/* @returns the librdkafka property a config key (without "kafka.") names
 *          for @p role, or NULL when the key is scoped to another role. */
static const char *role_property(const char *name, pgs_kafka_role_t role)
{
    static const struct {
        const char *prefix;
        pgs_kafka_role_t role;
    } scopes[] = {{PGS_KAFKA_CONSUMER_PREFIX, PGS_KAFKA_CONSUMER},
                  {PGS_KAFKA_PRODUCER_PREFIX, PGS_KAFKA_PRODUCER}};
    for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
        size_t len = strlen(scopes[i].prefix);
        if (strncmp(name, scopes[i].prefix, len) == 0)
            return scopes[i].role == role ? name + len : NULL;
    }
    return name;
}

static void conf_set(const char *name, const char *value, void *opaque)
{
    conf_ctx_t *ctx = opaque;
    char why[256];
    const char *prop = role_property(name, ctx->role);
    if (ctx->failed || !prop)
        return;
    if (rd_kafka_conf_set(ctx->conf, prop, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        /* the value may be a secret: name the key only */
        snprintf(ctx->errstr, ctx->errstr_size, "kafka.%s: %s", name, why);
        ctx->failed = 1;
    }
}

/* @locality any librdkafka thread */
void pgs_kafkaconf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    pgs_log_level_t lvl = level <= 3   ? PGS_LOG_ERROR
                          : level == 4 ? PGS_LOG_WARN
                          : level <= 6 ? PGS_LOG_INFO
                                       : PGS_LOG_DEBUG;
    const char *kv[] = {"fac", fac ? fac : "-", "name", rk ? rd_kafka_name(rk) : "-", NULL};
    pgs_log_kv(lvl, "kafka", kv, "%s", buf ? buf : "");
}

void pgs_kafkaconf_route_logs(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, pgs_kafkaconf_log_cb);
}

rd_kafka_conf_t *pgs_kafkaconf_new(const pgs_config_t *cfg, pgs_kafka_role_t role,
                                   const char *const *defaults, const char *brokers, char *errstr,
                                   size_t errstr_size)
{
    conf_ctx_t ctx = {rd_kafka_conf_new(), errstr, errstr_size, role, 0};
    /* first: librdkafka must never print its own `%N|...` lines */
    pgs_kafkaconf_route_logs(ctx.conf);
    const char *env = getenv("PGSCRIBE_KAFKA");
    conf_set("bootstrap.servers", env && *env ? env : PGS_KAFKA_DEFAULT_BROKERS, &ctx);
    /* TLS verifies the broker's host name unless a config says otherwise
     * (librdkafka 2.x's default too; older ones had none); a build without
     * TLS refuses the key, which is no error here */
    char ignored[128];
    rd_kafka_conf_set(ctx.conf, "ssl.endpoint.identification.algorithm", "https", ignored,
                      sizeof(ignored));
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        conf_set(defaults[i], defaults[i + 1], &ctx);
    pgs_config_kafka_foreach(cfg, conf_set, &ctx);
    if (brokers)
        conf_set("bootstrap.servers", brokers, &ctx);
    if (ctx.failed) {
        rd_kafka_conf_destroy(ctx.conf);
        return NULL;
    }
    return ctx.conf;
}
