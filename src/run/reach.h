/* Whether Kafka answers: librdkafka's error callback turned into pgscribe's
 * own bounded-rate lines, and the readiness check behind /readyz. */
#ifndef PGSCRIBE_REACH_H
#define PGSCRIBE_REACH_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "policy/lograte.h"

typedef struct pgs_worker_s pgs_worker_t;

/** The causes librdkafka reports for an unreachable cluster. */
enum { PGS_REACH_ALL_DOWN = 0, PGS_REACH_TRANSPORT, PGS_REACH_RESOLVE, PGS_REACH__COUNT };

typedef struct {
    char brokers[512]; /* bootstrap.servers, named in the lines */
    int kafka_down;    /* ALL_BROKERS_DOWN since the last successful contact */
    int kafka_trouble; /* an unreachable line was written since then */
    int64_t down_since_us;
    pgs_lograte_t rate[PGS_REACH__COUNT];
    int contacted;          /* Kafka has answered at least once since the start */
    int start_refused;      /* a TLS or authentication failure before that */
    char refused_why[512];  /* librdkafka's reason (names the certificate problem) */
    _Atomic int cert_error; /* the last X509 verification error (a broker thread sets it) */
} pgs_reach_t;

/**
 * @brief Records the brokers a configuration names, before rd_kafka_new(),
 *        and sets pgs_reach_error_cb() on it (opaque: the worker).
 */
void pgs_reach_conf(pgs_worker_t *w, rd_kafka_conf_t *conf);

/**
 * @brief librdkafka's error callback for the worker's handles: an
 *        unreachable cluster (ALL_BROKERS_DOWN, _TRANSPORT, _RESOLVE) is a warn
 *        line naming the brokers, at most one per cause every 10 s with
 *        suppressed=N; any other error is a warn (error when fatal) line.
 * @locality main thread (served by rd_kafka_poll / rd_kafka_consumer_poll)
 */
void pgs_reach_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/**
 * @brief A successful contact with the cluster (a message consumed, an
 *        assignment, a delivery acknowledged): after an unreachable line, an
 *        info line says Kafka is reachable again and the kafka check of
 *        /readyz passes again. Cheap when nothing was wrong.
 * @locality main thread
 */
void pgs_reach_contact(pgs_worker_t *w);

/**
 * @brief librdkafka's certificate verification callback: keeps OpenSSL's
 *        verdict and remembers its error (hostname mismatch, unable to get
 *        local issuer certificate, ...) for the refusal line, since
 *        librdkafka's own reason says only "certificate verify failed".
 * @returns 1 when OpenSSL accepted the certificate, else 0 (errstr set).
 * @locality a librdkafka broker thread
 */
int pgs_reach_cert_verify_cb(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                             int *x509_error, int depth, const char *buf, size_t size, char *errstr,
                             size_t errstr_size, void *opaque);

/**
 * @brief Whether a TLS (RD_KAFKA_RESP_ERR__SSL) or SASL
 *        (RD_KAFKA_RESP_ERR__AUTHENTICATION) failure came before the first
 *        successful contact: a wrong CA, host name or listener that no retry
 *        can mend, so the worker stops at start (exit 5). After a first
 *        contact the same errors are only logged and retried.
 * @returns 1 and librdkafka's reason in @p why when the start is refused.
 */
int pgs_reach_start_refused(const pgs_worker_t *w, const char **why);

/** @returns 1 unless all brokers went down since the last successful contact. */
int pgs_reach_kafka_ok(const pgs_worker_t *w);

#endif
