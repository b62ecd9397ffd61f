/* systemd's service notifications (sd_notify): READY, RELOADING, STOPPING,
 * WATCHDOG and STATUS. Every call is a no-op when NOTIFY_SOCKET is unset. */
#ifndef PGSCRIBE_NOTIFY_H
#define PGSCRIBE_NOTIFY_H

#include <stdint.h>

typedef struct pgs_worker_s pgs_worker_t;

typedef struct {
    int ready_sent;      /* READY=1 sent since the start or the last RELOADING=1 */
    int reloading;       /* RELOADING=1 sent, READY=1 not yet */
    int last_ready;      /* readiness at the last STATUS, -1 before the first */
    int64_t watchdog_us; /* ping interval: half of WATCHDOG_USEC; 0 when off */
    int64_t watchdog_next_us;
} pgs_notify_t;

/** @brief Reads the watchdog interval systemd set (sd_watchdog_enabled). */
void pgs_notify_init(pgs_worker_t *w);

/**
 * @brief One turn of the main loop: READY=1 (with STATUS) the first time the
 *        worker is ready as /readyz judges it (partitions assigned, pools
 *        connected, Kafka reachable) and, after a reload, once the catalog
 *        load is done; STATUS when readiness changes; WATCHDOG=1 when due.
 * @locality main thread
 */
void pgs_notify_tick(pgs_worker_t *w);

/** @brief SIGHUP taken: RELOADING=1 (with MONOTONIC_USEC) and STATUS. */
void pgs_notify_reloading(pgs_worker_t *w);

/** @brief The main loop left: STOPPING=1 and STATUS naming the drain. */
void pgs_notify_stopping(pgs_worker_t *w);

#endif
