/* The audit-event statement: a batch of AuditEvents of one clinic stored by
 * one call of audit.append_events, each event id at most once, chained. */
#ifndef PGSCRIBE_AUDITSQL_H
#define PGSCRIBE_AUDITSQL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/command.h"
#include "sql/sqlbatch.h"

/** Prepared-statement name and SQL text; one result row: events stored. */
#define PGS_AUDITSQL_NAME "pgs_audit_store"
const char *pgs_auditsql_statement(void);
#define PGS_AUDITSQL_NPARAMS 17

/** @brief Parameters for @p n events of one clinic, in statement order. */
void pgs_auditsql_params(const pgs_audit_event_t *const *evs, const int32_t *partitions,
                         const int64_t *offsets, size_t n, const char *topic,
                         pgs_batch_params_t *out);

#endif
