/* Intake: decode, validate and schedule each consumed message. */
#ifndef PGSCRIBE_INTAKE_H
#define PGSCRIBE_INTAKE_H

#include <librdkafka/rdkafka.h>

typedef struct pgs_worker_s pgs_worker_t;

/** @brief Takes one consumed message (or consumer error) into the worker. */
void pgs_intake_message(pgs_worker_t *w, rd_kafka_message_t *rkm);

#endif
