/* Intake: decode, validate and schedule each consumed message. */
#ifndef PGSCRIBE_INTAKE_H
#define PGSCRIBE_INTAKE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

typedef struct pgs_worker_s pgs_worker_t;

/**
 * @brief Does the Kafka message key name another clinic than @p clinic_id?
 *        A command's key is `clinic_id/entity/key...`: when it holds a `/`,
 *        it must begin with @p clinic_id followed by `/`; a key without `/`
 *        (or none at all) names no clinic. An audit event's key (@p audit)
 *        is the clinic id itself: when present it must be @p clinic_id, or
 *        begin with @p clinic_id followed by `/`.
 * @returns 1 if the key names another clinic, 0 if it is consistent.
 */
int pgs_intake_key_names_other_clinic(const void *key, size_t key_len, const char *clinic_id,
                                      int audit);
typedef struct pgs_work_s pgs_work_t;
/** @brief Seals the command's values for field-encrypted columns of its
 *         entity (catalog/fieldseal.h) with the worker's keyring; a command
 *         that cannot be sealed is dead-lettered. @returns 0, or -1 (sent
 *         to the dead-letter topic). */
int pgs_intake_seal(pgs_worker_t *w, pgs_work_t *work);
/** @brief Takes one consumed message (or consumer error) into the worker. */
void pgs_intake_message(pgs_worker_t *w, rd_kafka_message_t *rkm);
/** @brief Decodes and queues again a message that waited for the schema
 *         registry (run/schemawait.h). */
struct pgs_work_s;
void pgs_intake_retry(pgs_worker_t *w, struct pgs_work_s *work);

#endif
