/* Catalog reload off the event loop (see reload.h): the catalog queries are
 * blocking libpq calls, so they run on a helper thread, never on the thread
 * that serves results, delivery reports and signals. */
#include "run/reload.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "run/pgnotice.h"

struct pgs_reload_s {
    pgs_reload_load_fn load;
    void *arg;
    int efd;
    pthread_t thread;
    int running; /* a thread was started and not yet joined */
    /* written by the thread before it signals the eventfd, read after */
    pgs_catalog_t *result;
    char errstr[512];
};

/* The connection stays open between loads (the periodic refresh would
 * otherwise start a backend every few seconds); a broken one is replaced. */
pgs_catalog_t *pgs_reload_from_db(void *arg, char *errstr, size_t errstr_size)
{
    pgs_reload_db_t *db = arg;
    if (db->conn && PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    if (!db->conn) {
        char timeout[16];
        snprintf(timeout, sizeof(timeout), "%d", db->connect_timeout_s);
        /* the conninfo's own settings win (expand_dbname); these are defaults */
        const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *vals[] = {timeout, "pgscribe-catalog", db->conninfo, NULL};
        db->conn = PQconnectdbParams(keys, vals, 1);
        pgs_pgnotice_attach(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK) {
            snprintf(errstr, errstr_size, "%s",
                     PQerrorMessage(db->conn)[0] ? PQerrorMessage(db->conn) : "cannot connect");
            PQfinish(db->conn);
            db->conn = NULL;
            return NULL;
        }
    }
    int unchanged = 0;
    pgs_catalog_t *cat =
        pgs_catalog_load_changed(db->conn, db->schema, db->known, &unchanged, errstr, errstr_size);
    if (!cat && !unchanged && !errstr[0])
        snprintf(errstr, errstr_size, "catalog load failed");
    if (!cat && !unchanged && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PQfinish(db->conn); /* left mid-transaction: start clean next time */
        db->conn = NULL;
    }
    return cat;
}

void pgs_reload_db_close(pgs_reload_db_t *db)
{
    PQfinish(db->conn);
    db->conn = NULL;
}

pgs_reload_t *pgs_reload_new(pgs_reload_load_fn load, void *arg)
{
    pgs_reload_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->load = load ? load : pgs_reload_from_db;
    r->arg = arg;
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->efd < 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void *reload_thread(void *p)
{
    pgs_reload_t *r = p;
    r->errstr[0] = '\0';
    r->result = r->load(r->arg, r->errstr, sizeof(r->errstr));
    uint64_t one = 1;
    /* the eventfd's write is the hand-over: the loop reads result after it */
    while (write(r->efd, &one, sizeof(one)) < 0)
        ;
    return NULL;
}

int pgs_reload_start(pgs_reload_t *r, char *errstr, size_t errstr_size)
{
    if (r->running)
        return 1;
    /* signals stay with the main thread: the helper blocks them all */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, reload_thread, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot start the reload thread: %s", strerror(rc));
        return -1;
    }
    r->running = 1;
    return 0;
}

int pgs_reload_busy(const pgs_reload_t *r)
{
    return r->running;
}

int pgs_reload_fd(const pgs_reload_t *r)
{
    return r->efd;
}

int pgs_reload_take(pgs_reload_t *r, pgs_catalog_t **cat, char *errstr, size_t errstr_size)
{
    uint64_t n;
    if (!r->running || read(r->efd, &n, sizeof(n)) != sizeof(n))
        return 0;
    /* the thread has written its result and is about to return */
    pthread_join(r->thread, NULL);
    r->running = 0;
    *cat = r->result;
    r->result = NULL;
    if (errstr_size > 0)
        snprintf(errstr, errstr_size, "%s", *cat ? "" : r->errstr);
    return 1;
}

void pgs_reload_free(pgs_reload_t *r)
{
    if (!r)
        return;
    if (r->running) {
        pthread_join(r->thread, NULL);
        pgs_catalog_free(r->result);
    }
    close(r->efd);
    free(r);
}
