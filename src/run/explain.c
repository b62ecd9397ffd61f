/* EXPLAIN of a slow shape's sample (see explain.h). The statement is
 * PREPAREd on the side connection and run with EXPLAIN EXECUTE under
 * plan_cache_mode = force_generic_plan: its values travel only as bind
 * parameters (into transaction-local settings the EXECUTE arguments read),
 * and the generic plan names them $n, so no value reaches the plan text.
 * Errors keep only their SQLSTATE: PostgreSQL's message can quote a value. */
#include "run/explain.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/xalloc.h"

#define EXPLAIN_NAME "pgs_explain"

struct pgs_explain_s {
    char *conninfo;
    PGconn *pg; /* the helper thread's only, opened on its first request */
    pthread_t thread;
    int running; /* a thread was started and not yet joined */
    atomic_int done;
    /* the request: written before the thread starts, read by it */
    char *sql;
    char *clinic;
    int n;
    char **values;
    int *lengths, *formats;
    char timeout[24];
    /* the result: written by the thread before it sets done */
    char *plan;
    char errstr[256];
};

pgs_explain_t *pgs_explain_new(const char *conninfo)
{
    pgs_explain_t *x = pgs_xalloc_calloc(1, sizeof(*x));
    x->conninfo = pgs_xalloc_strdup(conninfo ? conninfo : "");
    return x;
}

static void request_free(pgs_explain_t *x)
{
    for (int i = 0; i < x->n; i++)
        free(x->values[i]);
    free(x->values);
    free(x->lengths);
    free(x->formats);
    free(x->sql);
    free(x->clinic);
    x->values = NULL;
    x->lengths = x->formats = NULL;
    x->sql = x->clinic = NULL;
    x->n = 0;
}

static void join(pgs_explain_t *x)
{
    if (x->running) {
        pthread_join(x->thread, NULL);
        x->running = 0;
    }
}

void pgs_explain_free(pgs_explain_t *x)
{
    if (!x)
        return;
    join(x);
    request_free(x);
    free(x->plan);
    if (x->pg)
        PQfinish(x->pg);
    free(x->conninfo);
    free(x);
}

/* A failed step: its SQLSTATE only. */
static int failed(pgs_explain_t *x, const char *step, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(x->errstr, sizeof(x->errstr), "%s failed (SQLSTATE %s)", step, state ? state : "none");
    PQclear(r);
    return -1;
}

static int exec_ok(pgs_explain_t *x, const char *sql, const char *step)
{
    PGresult *r = PQexec(x->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return failed(x, step, r);
    PQclear(r);
    return 0;
}

static int side_connect(pgs_explain_t *x)
{
    if (x->pg && PQstatus(x->pg) == CONNECTION_OK)
        return 0;
    if (x->pg)
        PQfinish(x->pg);
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "pgscribe-explain", x->conninfo, NULL};
    x->pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(x->pg) == CONNECTION_OK)
        return 0;
    snprintf(x->errstr, sizeof(x->errstr), "cannot connect: %s", PQerrorMessage(x->pg));
    for (char *p = x->errstr; *p; p++)
        *p = *p == '\n' ? ' ' : *p;
    PQfinish(x->pg);
    x->pg = NULL;
    return -1;
}

/* A value as text for set_config: a binary one (bytea) as its hex input. */
static char *value_text(const pgs_explain_t *x, int i)
{
    if (!x->formats[i])
        return pgs_xalloc_strdup(x->values[i]);
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)x->lengths[i];
    char *t = pgs_xalloc_malloc(2 * n + 3);
    t[0] = '\\';
    t[1] = 'x';
    for (size_t k = 0; k < n; k++) {
        t[2 + 2 * k] = hex[(unsigned char)x->values[i][k] >> 4];
        t[3 + 2 * k] = hex[(unsigned char)x->values[i][k] & 15];
    }
    t[2 * n + 2] = '\0';
    return t;
}

/* EXPLAIN EXECUTE takes no bind parameters (its arguments are evaluated
 * apart from the protocol's), and a value must never be SQL text: each
 * value goes as a bind parameter into a transaction-local setting, and the
 * EXECUTE arguments read them back, cast to the statement's own types. */
static int stage_values(pgs_explain_t *x, PGresult *desc, pgs_sbuf_t *args)
{
    int np = PQnparams(desc);
    pgs_sbuf_t oids = {0};
    pgs_sbuf_puts(&oids, "{");
    for (int i = 0; i < np; i++)
        pgs_sbuf_printf(&oids, "%s%u", i ? "," : "", (unsigned)PQparamtype(desc, i));
    pgs_sbuf_puts(&oids, "}");
    const char *p1[1] = {oids.buf};
    PGresult *types = PQexecParams(x->pg,
                                   "SELECT format_type(t, NULL) FROM unnest($1::oid[])"
                                   " WITH ORDINALITY AS u(t, i) ORDER BY i",
                                   1, NULL, p1, NULL, NULL, 0);
    free(oids.buf);
    if (PQresultStatus(types) != PGRES_TUPLES_OK || PQntuples(types) != np)
        return failed(x, "type names", types);
    for (int i = 0; i < np; i++) {
        const char *type = PQgetvalue(types, i, 0);
        pgs_sbuf_puts(args, i ? ", " : "(");
        if (!x->values[i]) {
            pgs_sbuf_printf(args, "NULL::%s", type);
            continue;
        }
        char name[48];
        snprintf(name, sizeof(name), "pgscribe.explain_%d", i + 1);
        char *text = value_text(x, i);
        const char *p2[2] = {name, text};
        PGresult *r =
            PQexecParams(x->pg, "SELECT set_config($1, $2, true)", 2, NULL, p2, NULL, NULL, 0);
        free(text);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQclear(types);
            return failed(x, "staging a value", r);
        }
        PQclear(r);
        pgs_sbuf_printf(args, "current_setting('%s')::%s", name, type);
    }
    if (np > 0)
        pgs_sbuf_puts(args, ")");
    PQclear(types);
    return 0;
}

/* The plan of the prepared statement, run once with the sample's values. */
static int explain_execute(pgs_explain_t *x)
{
    PGresult *r = PQdescribePrepared(x->pg, EXPLAIN_NAME);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return failed(x, "describe", r);
    int np = PQnparams(r);
    if (np != x->n) {
        PQclear(r);
        snprintf(x->errstr, sizeof(x->errstr), "statement takes %d parameters, sample has %d", np,
                 x->n);
        return -1;
    }
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) EXECUTE " EXPLAIN_NAME);
    int staged = stage_values(x, r, &sb);
    PQclear(r);
    if (staged != 0) {
        free(sb.buf);
        return -1;
    }
    r = PQexec(x->pg, sb.buf);
    free(sb.buf);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return failed(x, "EXPLAIN", r);
    pgs_sbuf_t plan = {0};
    for (int i = 0; i < PQntuples(r); i++)
        pgs_sbuf_printf(&plan, "%s%s", i ? "\n" : "", PQgetvalue(r, i, 0));
    PQclear(r);
    x->plan = plan.buf ? plan.buf : pgs_xalloc_strdup("");
    return 0;
}

static void explain_run(pgs_explain_t *x)
{
    if (side_connect(x) != 0)
        return;
    /* PREPARE is not transactional: a name left by an earlier failure goes */
    PQclear(PQexec(x->pg, "DEALLOCATE ALL"));
    if (exec_ok(x, "BEGIN", "BEGIN") != 0)
        goto out;
    /* the real transaction's setup: its clinic, so RLS binds the same way */
    const char *setup[2] = {x->clinic, x->timeout};
    PGresult *r = PQexecParams(x->pg,
                               "SELECT set_config('pgscribe.clinic_id', $1, true),"
                               " set_config('statement_timeout', $2, true),"
                               " set_config('lock_timeout', $2, true),"
                               " set_config('plan_cache_mode', 'force_generic_plan', true)",
                               2, NULL, setup, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        failed(x, "setup", r);
        goto rollback;
    }
    PQclear(r);
    r = PQprepare(x->pg, EXPLAIN_NAME, x->sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        failed(x, "PREPARE", r);
        goto rollback;
    }
    PQclear(r);
    explain_execute(x);
rollback:
    /* EXPLAIN ANALYZE executed the write: none of it stays */
    exec_ok(x, "ROLLBACK", "ROLLBACK");
    PQclear(PQexec(x->pg, "DEALLOCATE ALL"));
out:
    if (PQstatus(x->pg) != CONNECTION_OK) {
        PQfinish(x->pg);
        x->pg = NULL;
    }
}

static void *explain_thread(void *p)
{
    pgs_explain_t *x = p;
    explain_run(x);
    atomic_store(&x->done, 1);
    return NULL;
}

int pgs_explain_start(pgs_explain_t *x, const char *sql, const char *clinic, int n,
                      const char *const *values, const int *lengths, const int *formats,
                      int timeout_ms)
{
    if (x->running)
        return 1;
    request_free(x);
    free(x->plan);
    x->plan = NULL;
    x->errstr[0] = '\0';
    x->sql = pgs_xalloc_strdup(sql);
    x->clinic = pgs_xalloc_strdup(clinic);
    x->n = n;
    x->values = pgs_xalloc_calloc((size_t)n + 1, sizeof(char *));
    x->lengths = pgs_xalloc_calloc((size_t)n + 1, sizeof(int));
    x->formats = pgs_xalloc_calloc((size_t)n + 1, sizeof(int));
    for (int i = 0; i < n; i++) {
        x->formats[i] = formats ? formats[i] : 0;
        if (!values[i])
            continue; /* SQL NULL */
        size_t len = x->formats[i] ? (size_t)lengths[i] : strlen(values[i]);
        x->values[i] = pgs_xalloc_malloc(len + 1);
        memcpy(x->values[i], values[i], len);
        x->values[i][len] = '\0';
        x->lengths[i] = (int)len;
    }
    snprintf(x->timeout, sizeof(x->timeout), "%d", timeout_ms);
    atomic_store(&x->done, 0);
    if (pthread_create(&x->thread, NULL, explain_thread, x) != 0) {
        request_free(x);
        return -1;
    }
    x->running = 1;
    return 0;
}

int pgs_explain_busy(const pgs_explain_t *x)
{
    return x->running;
}

int pgs_explain_take(pgs_explain_t *x, char **plan, char *errstr, size_t errstr_size)
{
    if (!x->running || !atomic_load(&x->done))
        return 0;
    join(x);
    /* the values of the sample are not kept a moment longer than needed */
    request_free(x);
    *plan = x->plan;
    x->plan = NULL;
    snprintf(errstr, errstr_size, "%s", x->errstr);
    return 1;
}
