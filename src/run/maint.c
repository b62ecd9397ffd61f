/* The audit maintenance loop (see maint.h). A pass on the helper thread:
 * connect if needed, take the advisory lock if not held yet (the session
 * keeps it until the connection ends, so a dead worker's lock passes to the
 * next one that tries), then, as the leader, audit.maintain_partitions() and
 * audit.refresh_activity() (migration 0012), each in its own transaction. */
#include "run/maint.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "run/pgnotice.h"

#define MAINT_STANDBY_RETRY_MS 30000

typedef struct {
    int elected; /* the lock was taken in this pass */
    int leader;  /* the lock is held after this pass */
    int made;    /* partitions created; -1 when that step failed */
    int views;   /* views refreshed; -1 when that step failed */
    int64_t took_us;
    char err[512];
} maint_result_t;

struct pgs_maint_s {
    char *conninfo;
    char *worker_id;
    int connect_timeout_s;
    PGconn *conn; /* the helper thread's between passes; holds the lock */
    int leader;
    int standby_logged;
    int months_ahead; /* the pass's input, written before the thread starts */
    pthread_t thread;
    int running;
    atomic_int done;
    maint_result_t res;
    int64_t last_start_us;
};

pgs_maint_t *pgs_maint_new(const char *conninfo, const char *worker_id, int connect_timeout_s)
{
    pgs_maint_t *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->conninfo = strdup(conninfo ? conninfo : "");
    m->worker_id = strdup(worker_id ? worker_id : "");
    m->connect_timeout_s = connect_timeout_s;
    m->last_start_us = INT64_MIN;
    atomic_init(&m->done, 0);
    return m;
}

static int maint_connect(pgs_maint_t *m, maint_result_t *r)
{
    if (m->conn && PQstatus(m->conn) == CONNECTION_OK)
        return 0;
    PQfinish(m->conn);
    m->leader = 0; /* a new session holds no lock */
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", m->connect_timeout_s);
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {timeout, "pgscribe-maintenance", m->conninfo, NULL};
    m->conn = PQconnectdbParams(keys, vals, 1);
    pgs_pgnotice_attach(m->conn);
    if (PQstatus(m->conn) != CONNECTION_OK) {
        snprintf(r->err, sizeof(r->err), "cannot connect: %s", PQerrorMessage(m->conn));
        PQfinish(m->conn);
        m->conn = NULL;
        return -1;
    }
    return 0;
}

/* One statement returning one int; -1 with r->err set on failure. */
static int maint_int(pgs_maint_t *m, const char *sql, const char *arg, maint_result_t *r)
{
    const char *params[] = {arg};
    PGresult *res = PQexecParams(m->conn, sql, arg ? 1 : 0, NULL, params, NULL, NULL, 0);
    int v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        v = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
            v = 1;
    } else if (!r->err[0]) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(r->err, sizeof(r->err), "%s: %s", st ? st : "?", PQerrorMessage(m->conn));
        r->err[strcspn(r->err, "\n")] = '\0';
    }
    PQclear(res);
    return v;
}

static void *maint_thread(void *p)
{
    pgs_maint_t *m = p;
    maint_result_t *r = &m->res;
    memset(r, 0, sizeof(*r));
    r->made = r->views = -1;
    int64_t t0 = pgs_clock_now_us();
    if (maint_connect(m, r) == 0) {
        if (!m->leader) {
            char key[32];
            snprintf(key, sizeof(key), "%lld", (long long)PGS_MAINT_LOCK_KEY);
            if (maint_int(m, "SELECT pg_try_advisory_lock($1::bigint)", key, r) == 1) {
                m->leader = 1;
                r->elected = 1;
            }
        }
        if (m->leader) {
            char months[16];
            snprintf(months, sizeof(months), "%d", m->months_ahead);
            r->made = maint_int(m, "SELECT audit.maintain_partitions($1::int)", months, r);
            r->views = maint_int(m, "SELECT audit.refresh_activity()", NULL, r);
        }
        if (PQstatus(m->conn) != CONNECTION_OK) {
            PQfinish(m->conn); /* the lock went with the session */
            m->conn = NULL;
            m->leader = 0;
        }
    }
    r->leader = m->leader;
    r->took_us = pgs_clock_now_us() - t0;
    atomic_store(&m->done, 1);
    return NULL;
}

static void maint_report(pgs_maint_t *m)
{
    const maint_result_t *r = &m->res;
    if (r->elected) {
        pgs_info("maintenance",
                 "worker %s elected: it runs the audit maintenance loop "
                 "(advisory lock %lld held)",
                 m->worker_id, (long long)PGS_MAINT_LOCK_KEY);
        m->standby_logged = 0;
    }
    if (!r->leader) {
        if (r->err[0])
            pgs_warn("maintenance", "audit maintenance: %s", r->err);
        else if (!m->standby_logged)
            pgs_info("maintenance",
                     "another worker runs the audit maintenance loop; worker %s "
                     "stands by",
                     m->worker_id);
        m->standby_logged = !r->err[0];
        return;
    }
    if (r->err[0])
        pgs_warn("maintenance", "audit maintenance pass failed (partitions=%d views=%d): %s",
                 r->made, r->views, r->err);
    else if (r->made > 0)
        pgs_info("maintenance",
                 "audit maintenance pass: %d partition(s) created, %d views refreshed in %lld ms",
                 r->made, r->views, (long long)(r->took_us / 1000));
    else
        pgs_debug("maintenance",
                  "audit maintenance pass: no partition needed, %d views refreshed in %lld ms",
                  r->views, (long long)(r->took_us / 1000));
}

void pgs_maint_tick(pgs_maint_t *m, int64_t now_us, int64_t interval_ms, int months_ahead)
{
    if (m->running) {
        if (!atomic_load(&m->done))
            return;
        pthread_join(m->thread, NULL);
        m->running = 0;
        atomic_store(&m->done, 0);
        maint_report(m);
    }
    int64_t every_ms = interval_ms;
    if (!m->leader && every_ms > MAINT_STANDBY_RETRY_MS)
        every_ms = MAINT_STANDBY_RETRY_MS;
    if (m->last_start_us != INT64_MIN && now_us - m->last_start_us < every_ms * 1000)
        return;
    m->months_ahead = months_ahead;
    m->last_start_us = now_us;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with the main thread */
    int rc = pthread_create(&m->thread, NULL, maint_thread, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        pgs_warn("maintenance", "cannot start the maintenance thread: %s", strerror(rc));
    else
        m->running = 1;
}

void pgs_maint_free(pgs_maint_t *m)
{
    if (!m)
        return;
    if (m->running)
        pthread_join(m->thread, NULL);
    PQfinish(m->conn);
    free(m->conninfo);
    free(m->worker_id);
    free(m);
}
