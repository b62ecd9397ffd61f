/* Codec: the message contract's two encodings (Confluent-framed Avro and
 * JSON) for WriteCommand, AuditEvent and WorkerMetrics. Pure code. */
#ifndef PGSCRIBE_CODEC_H
#define PGSCRIBE_CODEC_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/command.h"
#include "common/traceparent.h"
#include "policy/error.h"

/* Schema ids of the schemas shipped in schemas/avro (see its README). */
#define PGS_SCHEMA_ID_WRITE_COMMAND_V1  1 /* older writer: no expected_version */
#define PGS_SCHEMA_ID_WRITE_COMMAND_V2  2 /* current */
#define PGS_SCHEMA_ID_AUDIT_EVENT_V1    3
#define PGS_SCHEMA_ID_WORKER_METRICS_V1 4 /* older: no in-flight transactions */
#define PGS_SCHEMA_ID_WORKER_METRICS_V2 5 /* older: no tenant violations */
#define PGS_SCHEMA_ID_WORKER_METRICS_V3 6 /* current */
#define PGS_SCHEMA_ID_AUDIT_EVENT_V2    7 /* adds recipient, purpose, description */

/** Largest message value the decoder accepts, and the largest string. */
#define PGS_MAX_MESSAGE_BYTES (4 * 1024 * 1024)
#define PGS_MAX_STRING_BYTES  (1024 * 1024)

typedef struct pgs_codec_s pgs_codec_t;

/** @brief Parses the shipped schemas (compiled into the binary). NULL on error. */
pgs_codec_t *pgs_codec_new(char *errstr, size_t errstr_size);
void pgs_codec_free(pgs_codec_t *codec);

/**
 * @brief Where a Schema Registry's writer schemas come from: the schema
 *        text of registry id @p id in @p *schema_json (kept by the
 *        resolver for the codec's life).
 * @returns 0 when found, 1 when the registry does not know the id, -1 when
 *          it cannot be asked now (the message must wait, not fail).
 */
typedef int (*pgs_codec_resolve_fn)(void *opaque, int32_t id, const char **schema_json,
                                    char *errstr, size_t errstr_size);
/**
 * @brief With a resolver, the schema id of an Avro command or audit event
 *        is the registry's: its writer schema is resolved (once per id) and
 *        read into the current reader schema. A registry that cannot be
 *        asked makes decoding return PGS_E_REGISTRY_UNAVAILABLE. Metrics
 *        records keep the shipped ids.
 */
void pgs_codec_set_resolver(pgs_codec_t *codec, pgs_codec_resolve_fn fn, void *opaque);
int pgs_codec_has_resolver(const pgs_codec_t *codec);
/** @brief The JSON text of shipped schema @p id (schemas/avro), or NULL. */
const char *pgs_codec_schema_text(int id);
/**
 * @brief With @p on, every Avro WriteCommand is read by avro-c's generic
 *        reader instead of the plan of its writer schema (codec_direct.c).
 *        Both give the same command; tests compare them.
 */
void pgs_codec_read_with_avro_c(pgs_codec_t *codec, int on);
/** @brief Rewrites the schema id of a Confluent-framed message in place. */
void pgs_codec_set_frame_id(char *buf, size_t len, int32_t id);

/**
 * @brief Decodes one WriteCommand: JSON if @p is_json, else Confluent-framed
 *        Avro by schema id (older writer schemas through schema resolution).
 *        Checks: UTF-8 validity, no NUL in strings, strings <= 1 MB,
 *        command_id is a uuid, op is known, required fields present.
 * @returns PGS_OK and *out (free with pgs_command_free), or a decode error
 *          with a PHI-free message in @p errstr (names fields, never values).
 */
pgs_err_t pgs_codec_decode_command(pgs_codec_t *codec, const void *buf, size_t len, int is_json,
                                   pgs_command_t **out, char *errstr, size_t errstr_size);
pgs_err_t pgs_codec_decode_audit(pgs_codec_t *codec, const void *buf, size_t len, int is_json,
                                 pgs_audit_event_t **out, char *errstr, size_t errstr_size);

/** What a message's content-type header says it is. */
typedef enum {
    PGS_CONTENT_NONE = 0, /* no content-type header: Avro, the default */
    PGS_CONTENT_JSON,     /* application/json */
    PGS_CONTENT_AVRO,     /* application/vnd.pgscribe.v1+avro */
    PGS_CONTENT_OTHER,    /* a type pgscribe does not name: read as Avro */
} pgs_content_t;

/** @brief The content-type header values pgscribe's producers write. */
#define PGS_CONTENT_TYPE_JSON "application/json"
#define PGS_CONTENT_TYPE_AVRO "application/vnd.pgscribe.v1+avro"

/**
 * @brief Matches a content-type header value as MIME types are matched:
 *        type and subtype case-insensitive, surrounding spaces and
 *        parameters ("; charset=utf-8") ignored. @p value need not end in NUL.
 */
pgs_content_t pgs_codec_content_type(const void *value, size_t size);
/** @brief The content type of a message's headers: the last header whose
 *         name is content-type in any letter case (NONE if there is none). */
pgs_content_t pgs_codec_headers_content_type(const rd_kafka_headers_t *hdrs);
/** @brief The W3C trace context of a message: its last `traceparent`
 *         header (name in any letter case), when that header is valid.
 * @returns 0 and fills @p out, or -1 when there is none or it is invalid
 *          (an invalid traceparent starts no trace; it is not an error). */
int pgs_codec_headers_traceparent(const rd_kafka_headers_t *hdrs, pgs_traceparent_t *out);

/** @brief Encodes a command. Avro uses @p schema_id (1 or 2). *buf is malloc'd. */
int pgs_codec_encode_command(pgs_codec_t *codec, const pgs_command_t *cmd, int json, int schema_id,
                             char **buf, size_t *len);
int pgs_codec_encode_audit(pgs_codec_t *codec, const pgs_audit_event_t *ev, int json, char **buf,
                           size_t *len);

/** One clinic's share of an interval. */
typedef struct {
    const char *clinic_id;
    int64_t applied;
    int64_t db_time_us;
    int64_t tenant_violations; /* dead-lettered with class tenant */
} pgs_clinic_stat_t;

/** pgscribe.v1.WorkerMetrics: counts are for the interval [start, end). */
typedef struct {
    const char *worker_id;
    int64_t interval_start_ms;
    int64_t interval_end_ms;
    int64_t consumed;
    int64_t applied;
    int64_t duplicates;
    int64_t retried;
    int64_t dead_lettered;
    int64_t failed; /* = dead_lettered, kept for the contract's name */
    int64_t transactions;
    double commit_p50_ms;
    double commit_p95_ms;
    double commit_p99_ms;
    int64_t in_flight;              /* commands consumed, not completed */
    int64_t in_flight_transactions; /* write-command transactions open */
    int64_t in_flight_limit;        /* transactions allowed at once */
    int64_t consumer_lag;
    const char *breaker_state; /* "closed", "open", "half-open" */
    int64_t tenant_violations; /* dead-lettered with class tenant, all clinics */
    pgs_clinic_stat_t *clinics;
    size_t clinic_cnt;
} pgs_metrics_record_t;

/** @brief Avro (Confluent framed, schema id 6). *buf is malloc'd. */
int pgs_codec_encode_metrics(pgs_codec_t *codec, const pgs_metrics_record_t *rec, char **buf,
                             size_t *len);
/** @brief Decodes a metrics record (schema id 4, 5 or 6) into a JSON object
 *         text (malloc'd), with the writer's fields. */
pgs_err_t pgs_codec_metrics_to_json(pgs_codec_t *codec, const void *buf, size_t len, char **json,
                                    char *errstr, size_t errstr_size);

/** @brief Command as a JSON object text (malloc'd), the contract's JSON form. */
char *pgs_codec_json_from_command(const pgs_command_t *cmd);

#endif
