/* Load generator: deterministic streams of valid clinic write commands and
 * audit events. */
#ifndef PGSCRIBE_LOADGEN_H
#define PGSCRIBE_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "codec/command.h"

typedef struct pgs_loadgen_s pgs_loadgen_t;

typedef struct {
    int64_t base_time_ms; /* issued_at of command 0; command n is base + n */
    double reuse_ratio;   /* share of commands that pick a key seen before */
    double null_ratio;    /* chance that a nullable column is sent as null */
    double photo_ratio;   /* chance that a patient row carries a photo (bytes) */
} pgs_loadgen_opts_t;

/** @brief Defaults: 2024-01-01T00:00:00Z, reuse 0.6, null 0.08, photo 0.05. */
void pgs_loadgen_opts_default(pgs_loadgen_opts_t *opts);

/**
 * @brief A generator for clinics `clinic-001`..`clinic-NNN` (1..999).
 *        The same seed, clinic count and options give the same sequence.
 *        Commands target the `clinic` example schema (patients,
 *        appointments, encounters, prescriptions) and succeed when applied
 *        in order per key: the generator tracks each key's liveness and
 *        version exactly. @p opts may be NULL for defaults.
 * @returns NULL if @p clinics is out of range.
 */
pgs_loadgen_t *pgs_loadgen_new(uint64_t seed, int clinics, const pgs_loadgen_opts_t *opts);
void pgs_loadgen_free(pgs_loadgen_t *lg);

/** @brief The next command; the caller frees it with pgs_command_free. */
pgs_command_t *pgs_loadgen_next(pgs_loadgen_t *lg);

/**
 * @brief The next audit event; the caller frees it with pgs_command_audit_free.
 *        Audit events come from a second PRNG stream derived from the same
 *        seed, so drawing commands and events interleaved in any order leaves
 *        both sequences unchanged. Event n: a random v4 event_id, a clinic
 *        among the generator's, actor `user-N` or `svc-...`, an action of
 *        READ/CREATE/UPDATE/DELETE/EXPORT/LOGIN on patients, appointments,
 *        encounters or prescriptions with a uuid resource_id (LOGIN: resource
 *        type `session`, empty resource_id), outcome mostly SUCCESS (some
 *        DENIED, ERROR), occurred_at = base_time_ms + n, a `svc-...` source,
 *        and details `ip` (plus `method` for LOGIN, `reason` unless SUCCESS),
 *        synthetic strings only. The Kafka key is the event's clinic_id.
 */
pgs_audit_event_t *pgs_loadgen_next_audit(pgs_loadgen_t *lg);

/**
 * @brief The Kafka message key of a command: `clinic_id/entity/<key values
 *        joined with '/'>`, which keeps one row's commands in one partition.
 *        Strings as they are, longs and doubles in decimal, booleans as
 *        true/false, null as empty, bytes as hex.
 * @returns the length the full key needs (like snprintf); @p buf holds a
 *          NUL-terminated, possibly truncated copy.
 */
size_t pgs_loadgen_message_key(const pgs_command_t *cmd, char *buf, size_t size);

#endif
