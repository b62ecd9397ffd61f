/* The one way pgscribe builds a librdkafka configuration. */
#ifndef PGSCRIBE_KAFKACONF_H
#define PGSCRIBE_KAFKACONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "common/config.h"

/** Used when neither $PGSCRIBE_KAFKA nor kafka.bootstrap.servers says otherwise. */
#define PGS_KAFKA_DEFAULT_BROKERS "127.0.0.1:9092"

/** Which client a configuration is for: decides which scoped keys apply. */
typedef enum {
    PGS_KAFKA_CONSUMER, /**< gets `kafka.*` and `kafka.consumer.*` keys */
    PGS_KAFKA_PRODUCER, /**< gets `kafka.*` and `kafka.producer.*` keys */
    PGS_KAFKA_ADMIN     /**< gets `kafka.*` keys only (topic creation, metadata) */
} pgs_kafka_role_t;

/** Config-name prefixes (after `kafka.`) of the keys meant for one role. */
#define PGS_KAFKA_CONSUMER_PREFIX "consumer."
#define PGS_KAFKA_PRODUCER_PREFIX "producer."

/**
 * @brief A client configuration: bootstrap.servers from $PGSCRIBE_KAFKA (else
 *        the default), then @p defaults (name, value, ..., NULL; may be NULL),
 *        then every `kafka.*` key of @p cfg that is meant for @p role
 *        (`kafka.consumer.X` and `kafka.producer.X` are set as `X` on that
 *        role's clients only), then @p brokers when not NULL.
 *        Settings the caller must enforce go after this call.
 * @returns the configuration, or NULL with the key librdkafka rejected in
 *          @p errstr.
 */
rd_kafka_conf_t *pgs_kafkaconf_new(const pgs_config_t *cfg, pgs_kafka_role_t role,
                                   const char *const *defaults, const char *brokers, char *errstr,
                                   size_t errstr_size);

/**
 * @brief librdkafka's log callback: each line goes to pgscribe's log writer
 *        with module=kafka, fac= and name= (syslog levels 0-3 error, 4 warn,
 *        5-6 info, 7 debug). pgs_kafkaconf_new() sets it on every
 *        configuration it builds.
 * @locality any librdkafka thread
 */
void pgs_kafkaconf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/** @brief Sets pgs_kafkaconf_log_cb() on @p conf (for handles built without
 *         pgs_kafkaconf_new(), such as the mock cluster's). */
void pgs_kafkaconf_route_logs(rd_kafka_conf_t *conf);

#endif
