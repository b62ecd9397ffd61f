/* Tracing: the spans of commands whose traceparent header asks for them
 * (process, transaction, dead letter), continued from the producer's trace
 * and exported in batches as OTLP/JSON to topic.traces (and, optionally, an
 * OTLP/HTTP endpoint). Span attributes name positions, ids and statement
 * shapes, never a column value.
 * Everything here runs on the worker's main thread, except the OTLP/HTTP
 * sender's own thread (otlphttp.c). */
#ifndef PGSCRIBE_TRACE_H
#define PGSCRIBE_TRACE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/traceparent.h"
#include "run/work.h"

typedef struct pgs_tracer_s pgs_tracer_t;

/** What trace.sampling names. */
typedef enum { PGS_TRACE_PARENT = 0, PGS_TRACE_ALWAYS, PGS_TRACE_NEVER } pgs_trace_mode_t;

/**
 * @brief Whether a command whose header carried @p tp gets spans: by
 *        @p mode, then by @p ratio of trace ids (the trace id's last 8
 *        bytes against ratio * 2^64, so one trace decides alike everywhere).
 * @returns non-zero for spans.
 */
int pgs_trace_decide(pgs_trace_mode_t mode, double ratio, const pgs_traceparent_t *tp);

/** @brief The tracer of a worker: its resource (service.instance.id =
 *         @p worker_id) and its exporters. @p producer is the worker's;
 *         trace batches go out on it. @returns NULL with @p errstr filled. */
pgs_tracer_t *pgs_trace_new(const pgs_config_t *cfg, const char *worker_id, rd_kafka_t *producer,
                            char *errstr, size_t errstr_size);
/** @brief Exports what is buffered (best effort) and frees the tracer. */
void pgs_trace_free(pgs_tracer_t *t);
/** @brief The database name, for db.namespace (set once it is known). */
void pgs_trace_set_db(pgs_tracer_t *t, const char *dbname);

/** @brief Starts the process span of a command taken in at @p consumed_ns
 *         (Unix epoch ns), when its traceparent and the sampling say so. */
void pgs_trace_begin(pgs_tracer_t *t, pgs_work_t *work, int64_t consumed_ns);
/**
 * @brief A transaction of @p works[0..n) ended @p took_us after it began:
 *        committed when @p code is NULL (each work's `fresh` says whether it
 *        was applied), else rolled back with SQLSTATE @p code and the
 *        PHI-free @p msg. Each traced work gets a transaction span.
 */
void pgs_trace_transaction(pgs_tracer_t *t, pgs_work_t *const *works, int n, int64_t took_us,
                           const char *code, const char *msg);
/** @brief A retry event on the work's process span. */
void pgs_trace_retry(pgs_tracer_t *t, pgs_work_t *work, const char *code, int64_t delay_us);
/** @brief The dead letter of the work is being produced: its send span
 *         starts (once, however often the broker refuses it). */
void pgs_trace_dead_letter(pgs_tracer_t *t, pgs_work_t *work);
/** @brief The work is done (applied, duplicate, or dead letter acked): its
 *         spans end and are queued for export. */
void pgs_trace_end(pgs_tracer_t *t, pgs_work_t *work);
/** @brief Drops the work's spans unexported (a work released, not done). */
void pgs_trace_discard(pgs_work_t *work);

/** @brief Exports a batch when one is full or trace.flush_ms has passed. */
void pgs_trace_tick(pgs_tracer_t *t, int64_t now_us);
/** @brief Exports every finished span now (on the way out). */
void pgs_trace_flush(pgs_tracer_t *t);
/** @returns spans dropped so far (buffer full, export refused or failed). */
int64_t pgs_trace_dropped(const pgs_tracer_t *t);
/** @returns finished spans waiting for export. */
size_t pgs_trace_buffered(const pgs_tracer_t *t);
/** @returns spans handed to the traces topic so far. */
int64_t pgs_trace_exported(const pgs_tracer_t *t);
/** @returns non-zero when @p opaque is the delivery opaque of a traces
 *           message (the worker's producer serves them with dead letters). */
int pgs_trace_is_delivery(const pgs_tracer_t *t, const void *opaque);
/** @brief The delivery report of a traces message; one not delivered has
 *         its spans counted as dropped.
 *  @locality librdkafka callback (main thread, inside rd_kafka_poll or
 *            rd_kafka_flush of the producer) */
void pgs_trace_delivered(pgs_tracer_t *t, const rd_kafka_message_t *rkm);

#endif
