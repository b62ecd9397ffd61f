/* The units the worker's stages pass along: a stream (commands or audit),
 * its consumed partitions, and each consumed message (a work). */
#ifndef PGSCRIBE_WORK_H
#define PGSCRIBE_WORK_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "codec/codec.h"
#include "codec/command.h"
#include "policy/error.h"
#include "run/lanes.h"
#include "run/offsets.h"
#include "sql/sqlgen.h"

typedef struct pgs_pool_s pgs_pool_t;
typedef struct pgs_stream_s pgs_stream_t;
struct pgs_work_s;

/** One consumed partition of a stream's topic. */
typedef struct pgs_partition_s {
    pgs_stream_t *stream;
    int32_t partition;
    int assigned;
    int revoking;        /* revoked, being drained by the main loop; takes no messages */
    uint32_t generation; /* bumped on each assignment */
    int dirty;           /* committable offset moved, not yet stored */
    int paused;          /* fetching paused (window, backlog or breaker) */
    pgs_offsets_t *offsets;
    size_t outstanding; /* works of this partition not yet completed */
    size_t over_limit;  /* of them, consumed over their clinic's rate limit (run/fair.h) */
    int64_t committed;  /* committed offset at assignment, for the lag (run/lag.h) */
    struct pgs_work_s *held_head, *held_tail; /* waiting for the registry (schemawait.h) */
    size_t held_cnt;
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
    pgs_catalog_t *cat;       /* a command's: referenced, so ent outlives a reload */
    const pgs_entity_t *ent;
    pgs_shape_t shape;
    int stmt;     /* single-command statement handle (statements.h), per transaction */
    int bstmt;    /* multi-row statement handle, or -1 */
    int isolate;  /* its multi-row statement failed: send it alone */
    int in_doubt; /* re-sent after its connection went with the outcome unknown */
    int alone;    /* its transaction failed at COMMIT: send it in one of its own */
    pgs_work_state_t state;
    uint32_t generation; /* of its partition's assignment when consumed */
    int in_lane;
    int attempts;
    int64_t retry_at_us;      /* while waiting out a retry backoff */
    int64_t first_failure_us; /* its first transient failure: the retry budget's start */
    pgs_err_t err;
    char *errmsg;                     /* malloc'd, PHI-free; set when dead-lettered */
    char errcode[PGS_ERROR_CODE_MAX]; /* a dead letter's code, never cut short */
    int64_t catalog_wait_until_us;    /* names a column its catalog does not know: waits
                                         for a newer catalog until then (0: not waiting) */
    int traced;                       /* the message carried a valid traceparent header */
    pgs_traceparent_t trace;          /* its W3C trace context, when traced */
    struct pgs_work_trace_s *tspan;   /* its spans while sampled (trace.c), else NULL */
    int fresh;                    /* its last commit applied it (1) or found its id recorded (0) */
    int over_limit;               /* consumed while its clinic queued more than its limit allows */
    struct pgs_work_s *held_next; /* next message waiting for the registry (schemawait.h) */
} pgs_work_t;

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

#endif
