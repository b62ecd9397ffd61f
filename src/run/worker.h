/* The running worker: the state its stages share (consume → decode/validate
 * → schedule (lanes) → apply → complete → report) and its event loop.
 * Everything here runs on the worker's one main thread. */
#ifndef PGSCRIBE_WORKER_H
#define PGSCRIBE_WORKER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "codec/codec.h"
#include "common/config.h"
#include "common/schemareg.h"
#include "run/http.h"
#include "run/keys.h"
#include "run/maint.h"
#include "run/metrics.h"
#include "run/notify.h"
#include "run/pool.h"
#include "run/profile.h"
#include "run/reach.h"
#include "run/reload.h"
#include "run/revoke.h"
#include "run/rewind.h"
#include "run/trace.h"
#include "run/work.h"
#include "policy/ratelimit.h"
#include "policy/retryq.h"

struct pgs_worker_s {
    pgs_config_t *cfg;
    char worker_id[128];
    char db_name[128]; /* the database applied to, for spans' db.namespace */
    const char *metrics_topic;
    size_t backlog_max;
    pgs_stream_t streams[PGS_STREAM__COUNT];

    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters and metrics; idempotent, acks=all */
    rd_kafka_queue_t *consumer_queue;
    rd_kafka_queue_t *close_queue; /* serves the rebalance of a closing consumer */
    rd_kafka_queue_t *lag_queue;   /* committed offsets of new assignments (lag.c) */
    int wake_fds[2];               /* librdkafka writes here when a consumer queue fills */
    int epfd;
    pgs_revoke_t revoke; /* revoked partitions the main loop drains */

    pgs_codec_t *codec;
    pgs_schemareg_t *registry;    /* schema_registry.url's client; NULL when unset */
    size_t schema_held;           /* messages waiting for the registry (schemawait.h) */
    int schema_wait_logged;       /* the wait's warning is out (once per spell) */
    int64_t schema_wait_since_us; /* that spell's start */
    int64_t schema_retry_at_us;   /* held messages are offered again then */
    pgs_catalog_t *catalog;
    pgs_catalog_t **retired_catalogs; /* replaced by a reload, still referenced by works */
    size_t retired_cnt;
    pgs_reload_t *reloader;          /* SIGHUP's catalog load, on its helper thread */
    pgs_reload_db_t reload_db;       /* its own copies of the conninfo and schema */
    int reload_again;                /* a SIGHUP came while a load was under way */
    int reload_full;                 /* the load under way is SIGHUP's, not a refresh */
    int catalog_loading;             /* a SIGHUP's catalog load is under way */
    int catalog_refresh_failing;     /* the last refresh failed (warned once) */
    int64_t catalog_refresh_last_us; /* the last load's start */
    uint32_t catalog_generation;     /* catalogs swapped in so far */

    size_t works_live;        /* consumed, not completed */
    pgs_retryq_t dlq_pending; /* dead letters the broker refused (dlq.c) */
    pgs_ratelimit_t *limits;  /* per-clinic rate limits of the commands stream (fair.h) */
    PgsKeyring *keyring;      /* crypto.keyring; NULL when none (keys.h) */
    pgs_counters_t ctr;
    int64_t metrics_interval_start_ms;
    int64_t metrics_next_us;

    pgs_http_t *http;       /* /metrics, /livez, /readyz, /status; NULL when off */
    pgs_profile_t *profile; /* statement profiles; /profile */
    pgs_reach_t reach;      /* whether Kafka answers (reach.c) */
    pgs_notify_t notify;    /* systemd notifications (notify.c) */
    pgs_tracer_t *tracer;   /* spans of traced commands; NULL until the producer is up */
    pgs_maint_t *maint;     /* the audit maintenance loop (maint.c) */

    pgs_rewind_identity_t db_identity; /* read at each rewind check (consume.c) */
    int have_db_identity;
    int restart_to_rewind; /* the identity changed on a reconnect: stop, exit 1 */

    volatile int stop; /* set by SIGTERM/SIGINT */
    volatile int reload;
    int consumer_closed;
};

/**
 * @brief One turn of the event loop without consuming: waits up to
 *        @p timeout_ms for database I/O, dispatches, serves delivery reports.
 * @locality main thread; never inside a librdkafka callback
 */
void pgs_worker_step(pgs_worker_t *w, int timeout_ms);
/**
 * @brief Starts a catalog refresh soon (at most one each 250 ms): a command
 *        named a column the catalog does not know.
 * @locality main thread
 */
void pgs_worker_catalog_kick(pgs_worker_t *w);

#endif
