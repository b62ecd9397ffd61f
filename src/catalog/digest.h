/* Command digests: what a command id stands for, so a reused id is caught. */
#ifndef PGSCRIBE_DIGEST_H
#define PGSCRIBE_DIGEST_H

#include "catalog/catalog.h"
#include "codec/command.h"

#define PGS_DIGEST_SIZE 32

/**
 * @brief SHA-256 of a validated command's canonical content: clinic, entity,
 *        op, each key value in the entity's key order and canonical form,
 *        each data column (in catalog column order, a repeat of the clinic
 *        column left out) with its value in canonical form or null, and
 *        expected_version. Two commands with equal digests write the same
 *        row the same way; the command id, actor, issued_at and the Kafka
 *        position are not part of it (a re-send may differ in those).
 */
void pgs_digest_command(const pgs_entity_t *ent, const pgs_command_t *cmd,
                        unsigned char out[PGS_DIGEST_SIZE]);

#endif
