/* Lane identity: the exact tuple that decides which commands run in order. */
#ifndef PGSCRIBE_LANEKEY_H
#define PGSCRIBE_LANEKEY_H

#include "catalog/catalog.h"
#include "codec/command.h"
#include "common/sbuf.h"

/**
 * @brief Sets @p out to the lane key of a validated command: the clinic, the
 *        entity and each primary key value in the entity's key order (in its
 *        canonical form by column type, see keyform.h), every part length-
 *        prefixed, never truncated. Two commands share a lane exactly when
 *        they name the same row of the same clinic, whatever bytes their
 *        clinic ids or key values hold.
 */
void pgs_lanekey_command(pgs_sbuf_t *out, const pgs_command_t *cmd, const pgs_entity_t *ent);

/** @brief Sets @p out to the lane key of an audit event: (clinic, event id). */
void pgs_lanekey_audit(pgs_sbuf_t *out, const pgs_audit_event_t *ev);

#endif
