/* produce --register: the shipped schemas of the topic's record registered
 * in the Schema Registry of schema_registry.*, and the produced messages
 * framed with the registry's ids instead of the shipped ones. */
#ifndef PGSCRIBE_PRODUCE_REGISTER_H
#define PGSCRIBE_PRODUCE_REGISTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/** Registry ids by shipped id (0: not registered). */
typedef struct {
    int32_t id[16];
} pgs_produce_ids_t;

/**
 * @brief Registers every shipped version of WriteCommand (or AuditEvent,
 *        @p audit), oldest first, under the subject "<topic>-value" (the
 *        registry's TopicNameStrategy), and fills @p ids.
 * @returns 0, or -1 with the reason printed on stderr.
 */
int pgs_produce_register(const pgs_config_t *cfg, const char *topic, int audit,
                         pgs_produce_ids_t *ids);
/** @brief Rewrites the shipped schema id of a framed message to its registry id. */
void pgs_produce_reframe(const pgs_produce_ids_t *ids, char *buf, size_t len);

#endif
