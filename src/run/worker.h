/* Internal state of a running worker, shared by the stages of the message
 * path: consume → decode/validate → schedule (lanes) → apply → complete →
 * report. Everything here runs on the worker's one main thread. */
#ifndef PGSCRIBE_WORKER_INT_H
#define PGSCRIBE_WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "common/clock.h"
#include "codec/codec.h"
#include "codec/command.h"
#include "common/config.h"
#include "policy/error.h"
#include "policy/hist.h"
#include "run/lanes.h"
#include "run/offsets.h"
#include "sql/sqlgen.h"

typedef struct pgs_worker_s pgs_worker_t;
typedef struct pgs_pool_s pgs_pool_t;
typedef struct pgs_stream_s pgs_stream_t;

/** One consumed partition of a stream's topic. */
typedef struct pgs_partition_s {
    pgs_stream_t *stream;
    int32_t partition;
    int assigned;
    uint32_t generation; /* bumped on each assignment */
    int dirty;           /* committable offset moved, not yet stored */
    int paused;          /* fetching paused (window, backlog or breaker) */
    pgs_offsets_t *offsets;
    size_t outstanding; /* works of this partition not yet completed */
} pgs_partition_t;

typedef enum {
    PGS_WORK_QUEUED = 0, /* in a lane */
    PGS_WORK_APPLYING,   /* in a transaction */
    PGS_WORK_DEAD_LETTERING,
} pgs_work_state_t;

/** One consumed message on its way through the worker. */
typedef struct pgs_work_s {
    pgs_lane_item_t lane; /* first member: lane items cast back to works */
    pgs_partition_t *part;
    int64_t offset;
    rd_kafka_message_t *rkm;  /* kept until done: a dead letter needs the original */
    pgs_command_t *cmd;       /* a command stream's message; NULL when decoding failed */
    pgs_audit_event_t *audit; /* an audit stream's message */
    const pgs_entity_t *ent;
    pgs_shape_t shape;
    int stmt_known; /* stmt and bstmt resolved by the apply pool */
    int stmt;       /* single-command statement id */
    int bstmt;      /* multi-row statement id, or -1 */
    int isolate;    /* its multi-row statement failed: send it alone */
    int in_doubt;   /* re-sent after its connection went with the outcome unknown */
    int alone;      /* its transaction failed at COMMIT: send it in one of its own */
    pgs_work_state_t state;
    uint32_t generation; /* of its partition's assignment when consumed */
    int in_lane;
    int attempts;
    int64_t retry_at_us; /* while waiting out a retry backoff */
    pgs_err_t err;
    char *errmsg; /* malloc'd, PHI-free; set when dead-lettered */
    char errcode[24];
} pgs_work_t;

/** Per-clinic counters for the current metrics interval. */
typedef struct pgs_clinic_counter_s {
    char *clinic_id;
    int64_t applied;
    int64_t db_time_us;
    struct pgs_clinic_counter_s *next;
} pgs_clinic_counter_t;

/** Counters of the current metrics interval (reset by each report). */
typedef struct {
    int64_t consumed, applied, duplicates, retried, dead_lettered, transactions;
    pgs_hist_t commit_latency;
    pgs_clinic_counter_t *clinics;
    /* totals since start, for the exit summary */
    int64_t total_consumed, total_applied, total_duplicates, total_dead_lettered;
    pgs_hist_t total_commit_latency;
} pgs_counters_t;

/** The two kinds of message pgscribe consumes, each a bulkhead: its own
 *  topic, dead-letter topic, lanes, connection pool and in-flight budget, so a
 *  flood of one cannot starve the other. */
typedef enum { PGS_STREAM_COMMANDS = 0, PGS_STREAM_AUDIT = 1, PGS_STREAM__COUNT } pgs_stream_kind_t;

struct pgs_stream_s {
    pgs_stream_kind_t kind;
    const char *name; /* "commands" or "audit", for logs */
    const char *topic;
    const char *dlq_topic;
    int max_batch;
    pgs_lanes_t *lanes;
    pgs_pool_t *pool;
    pgs_partition_t **parts; /* indexed by partition id */
    int32_t parts_cnt;
    rd_kafka_queue_t *queue;    /* its partitions' messages, apart from the other stream's */
    size_t live;                /* consumed, not completed (its own backlog bound) */
    int64_t stored, duplicates; /* audit stream: events stored / already stored */
};

struct pgs_worker_s {
    pgs_config_t *cfg;
    char worker_id[128];
    const char *metrics_topic;
    size_t backlog_max;
    pgs_stream_t streams[PGS_STREAM__COUNT];

    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters and metrics; idempotent, acks=all */
    rd_kafka_queue_t *consumer_queue;
    int wake_fds[2]; /* librdkafka writes here when the consumer queue fills */
    int epfd;

    pgs_codec_t *codec;
    pgs_catalog_t *catalog;
    pgs_catalog_t **retired_catalogs; /* still referenced by shapes and works */
    size_t retired_cnt;

    size_t works_live; /* consumed, not completed */
    pgs_counters_t ctr;
    int64_t metrics_interval_start_ms;
    int64_t metrics_next_us;

    volatile int stop; /* set by SIGTERM/SIGINT */
    volatile int reload;
    int consumer_closed;
};

/* consume.c */
int pgs_consume_start(pgs_worker_t *w, char *errstr, size_t errstr_size);
/** @brief Polls up to @p max messages and hands each to intake. @returns count. */
int pgs_consume_poll(pgs_worker_t *w, int max);
/** @brief Stores every partition's committable offset. */
void pgs_consume_store_offsets(pgs_worker_t *w);
void pgs_consume_close(pgs_worker_t *w);
void pgs_consume_update_pauses(pgs_worker_t *w);
pgs_partition_t *pgs_consume_partition_get(pgs_stream_t *stream, int32_t partition);
/** @brief The stream consuming @p topic, or NULL. */
pgs_stream_t *pgs_consume_stream_of_topic(pgs_worker_t *w, const char *topic);

/* intake.c: decode, validate, schedule */
void pgs_intake_message(pgs_worker_t *w, rd_kafka_message_t *rkm);

/* apply.c: the connection pool and its transactions */
pgs_pool_t *pgs_pool_new(pgs_worker_t *w, pgs_stream_t *stream, const char *conninfo, int size,
                         char *errstr, size_t errstr_size);
void pgs_pool_free(pgs_pool_t *pool);
/** @brief Starts transactions on idle connections for ready lane items. */
void pgs_pool_dispatch(pgs_pool_t *pool);
/** @brief Handles I/O readiness of the connection registered with @p tag. */
void pgs_pool_on_event(pgs_pool_t *pool, void *tag, uint32_t events);
/** @brief Periodic upkeep: reconnects broken connections. */
void pgs_pool_tick(pgs_pool_t *pool);
/** @brief Applies reloaded settings (the breaker's) after SIGHUP. */
void pgs_pool_reconfigure(pgs_pool_t *pool);
/** @brief "closed", "open" or "half-open". */
const char *pgs_pool_breaker_state(const pgs_pool_t *pool);
int pgs_pool_breaker_open(const pgs_pool_t *pool);
/** @returns how many of the pool's transactions are open now. */
int pgs_pool_busy(const pgs_pool_t *pool);
/** @returns how many transactions the pool may have in flight now. */
int pgs_pool_in_flight_limit(const pgs_pool_t *pool);
int pgs_pool_size(const pgs_pool_t *pool);

/* complete.c */
/** @brief The work is finished (applied, duplicate, or dead letter acked):
 *         its lane moves on and its offset may be stored. Frees the work. */
void pgs_complete_work(pgs_worker_t *w, pgs_work_t *work);
/** @brief Frees a work that will not complete here (revoked partition). */
void pgs_complete_work_free(pgs_worker_t *w, pgs_work_t *work);
/** @brief Adds a committed transaction to its clinic's interval counters. */
void pgs_complete_count_applied(pgs_worker_t *w, const char *clinic_id, int64_t applied,
                                int64_t db_time_us);

/* dlq.c */
/**
 * @brief Produces the dead letter of @p work; the work completes when the
 *        broker acknowledges it. @p code is the dead-letter code (a SQLSTATE
 *        for database errors) or NULL for pgs_error_code(err); @p msg is PHI-free.
 */
void pgs_dlq_send(pgs_worker_t *w, pgs_work_t *work, pgs_err_t err, const char *code,
                  const char *msg);
/** @brief Delivery-report callback of the shared producer. */
void pgs_dlq_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque);

/* metrics.c */
void pgs_metrics_maybe_report(pgs_worker_t *w, int force);
void pgs_metrics_counters_reset(pgs_counters_t *c);

/* worker.c */
/** @brief One turn of the event loop without consuming: waits up to
 *         @p timeout_ms for database I/O, dispatches, serves delivery reports. */
void pgs_worker_step(pgs_worker_t *w, int timeout_ms);

#endif
