/* The one way pgscribe builds a librdkafka configuration. */
#ifndef PGSCRIBE_KAFKACONF_H
#define PGSCRIBE_KAFKACONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "pgscribe/config.h"

/** Used when neither $PGSCRIBE_KAFKA nor kafka.bootstrap.servers says otherwise. */
#define PGS_KAFKA_DEFAULT_BROKERS "127.0.0.1:9092"

/**
 * @brief A client configuration: bootstrap.servers from $PGSCRIBE_KAFKA (else
 *        the default), then @p defaults (name, value, ..., NULL; may be NULL),
 *        then every `kafka.*` key of @p cfg, then @p brokers when not NULL.
 *        Settings the caller must enforce go after this call.
 * @returns the configuration, or NULL with the key librdkafka rejected in
 *          @p errstr.
 */
rd_kafka_conf_t *pgs_kafka_conf_new(const pgs_config_t *cfg, const char *const *defaults,
                                    const char *brokers, char *errstr, size_t errstr_size);

#endif
