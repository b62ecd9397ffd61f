/* systemd notifications. READY=1 waits for what /readyz checks, so a unit
 * ordered After=pgscribe.service starts once the worker really applies;
 * RELOADING=1 ... READY=1 brackets a SIGHUP including its catalog load; the
 * watchdog is pinged from the main loop itself, so a stuck loop is what it
 * catches. sd_notify does nothing without NOTIFY_SOCKET. */
#include "run/notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/clock.h"
#include "run/http.h"
#include "run/worker.h"

void pgs_notify_init(pgs_worker_t *w)
{
    pgs_notify_t *n = &w->notify;
    uint64_t usec = 0;
    n->last_ready = -1;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        n->watchdog_us = (int64_t)(usec / 2);
        n->watchdog_next_us = pgs_clock_now_us();
    }
}

static void status_line(pgs_worker_t *w, int ready, char *buf, size_t size)
{
    int parts = pgs_http_assigned_partitions(w);
    if (ready)
        snprintf(buf, size, "STATUS=applying: %d partition(s) assigned, %zu command(s) in flight",
                 parts, w->works_live);
    else if (!pgs_reach_kafka_ok(w))
        snprintf(buf, size, "STATUS=not ready: Kafka unreachable (%.160s)", w->reach.brokers);
    else
        snprintf(buf, size, "STATUS=not ready: %d partition(s) assigned, waiting for %s", parts,
                 parts > 0 ? "database connections" : "an assignment");
}

void pgs_notify_tick(pgs_worker_t *w)
{
    pgs_notify_t *n = &w->notify;
    int64_t now = pgs_clock_now_us();
    if (n->watchdog_us > 0 && now >= n->watchdog_next_us) {
        sd_notify(0, "WATCHDOG=1");
        n->watchdog_next_us = now + n->watchdog_us;
    }
    int ready = pgs_http_readiness(w, NULL);
    /* the first READY waits for readiness; the one ending a reload only for
     * the reload itself (systemd would otherwise hold the unit "reloading") */
    int send_ready = !n->ready_sent && !w->catalog_loading && (ready || n->reloading);
    if (!send_ready && ready == n->last_ready)
        return;
    char status[320];
    status_line(w, ready, status, sizeof(status));
    if (send_ready) {
        sd_notifyf(0, "READY=1\n%s", status);
        n->ready_sent = 1;
        n->reloading = 0;
    } else {
        sd_notify(0, status);
    }
    n->last_ready = ready;
}

void pgs_notify_reloading(pgs_worker_t *w)
{
    pgs_notify_t *n = &w->notify;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading configuration and catalog",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    n->reloading = 1;
    n->ready_sent = 0;
}

void pgs_notify_stopping(pgs_worker_t *w)
{
    sd_notifyf(0, "STOPPING=1\nSTATUS=stopping: draining %zu command(s)", w->works_live);
}
