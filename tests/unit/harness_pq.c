/* Scripted libpq for unit tests (see harness_pq.h). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness_pq.h"

#define HARNESS_MAX_LOG (64 * 1024)

typedef enum { A_RESULT, A_END, A_LOST } answer_kind_t;

struct pg_result {
    ExecStatusType status;
    char value[128];
    char sqlstate[8];
    char constraint[64];
    int ntuples;
    int is_error; /* answers PG_DIAG_MESSAGE_PRIMARY and _DETAIL as PostgreSQL
                     does: quoting a value and the key */
};

typedef struct answer_s {
    answer_kind_t kind;
    struct pg_result res;
    struct answer_s *next;
} answer_t;

struct pg_conn {
    ConnStatusType status;
    int fd;
    int aborted; /* an error came: the pipeline is aborted up to its sync */
    int lost;    /* the connection breaks once its answers so far are read */
    int setup;   /* non-blocking connect: PREPAREs before the first sync are setup */
    int polls_left, fail, stall;
    answer_t *head, *tail;
};

static struct {
    char script[4096];
    size_t pos;
    int fail_connects;
    int connect_polls, stall_connects, connects_started, polls;
    char log[HARNESS_MAX_LOG];
    size_t log_len;
    char identity[48]; /* the database's "SYSID/TIMELINE", "" none (an error) */
    int identity_asked;
} H;

void harness_pq_reset(void)
{
    memset(&H, 0, sizeof(H));
}

void harness_pq_identity(const char *identity)
{
    snprintf(H.identity, sizeof(H.identity), "%s", identity ? identity : "");
}

int harness_pq_identity_asked(void)
{
    return H.identity_asked;
}

/* The answer of the identity query a connection's setup asks. */
static struct pg_result identity_result(void)
{
    struct pg_result r = {.status = PGRES_FATAL_ERROR, .is_error = 0};
    H.identity_asked++;
    if (H.identity[0]) {
        r.status = PGRES_TUPLES_OK;
        r.ntuples = 1;
        snprintf(r.value, sizeof(r.value), "%s", H.identity);
    } else {
        snprintf(r.sqlstate, sizeof(r.sqlstate), "42883");
    }
    return r;
}

void harness_pq_script(const char *answers)
{
    size_t len = strlen(H.script);
    snprintf(H.script + len, sizeof(H.script) - len, "%s%s", len ? " " : "", answers);
}

/* The next token of the script, or "ok" when it is used up. */
static void next_token(char *tok, size_t size)
{
    while (H.script[H.pos] == ' ')
        H.pos++;
    size_t n = 0;
    while (H.script[H.pos] && H.script[H.pos] != ' ' && n + 1 < size)
        tok[n++] = H.script[H.pos++];
    tok[n] = '\0';
    if (n == 0)
        snprintf(tok, size, "ok");
}

int harness_pq_left(void)
{
    int n = 0;
    const char *p = H.script + H.pos;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    return n;
}

void harness_pq_fail_connects(int n)
{
    H.fail_connects = n;
}

void harness_pq_connect_polls(int n)
{
    H.connect_polls = n;
}

void harness_pq_stall_connects(int n)
{
    H.stall_connects = n;
}

int harness_pq_connects_started(void)
{
    return H.connects_started;
}

int harness_pq_polls(void)
{
    return H.polls;
}

int harness_pq_count(const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *line = H.log; *line;) {
        if (strncmp(line, prefix, plen) == 0)
            n++;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return n;
}

const char *harness_pq_log(void)
{
    return H.log;
}

static void log_sent(const char *what, const char *name)
{
    H.log_len += (size_t)snprintf(H.log + H.log_len, sizeof(H.log) - H.log_len, "%s%s%s\n", what,
                                  name ? " " : "", name ? name : "");
    if (H.log_len >= sizeof(H.log))
        abort();
}

static void push(PGconn *c, answer_kind_t kind, const struct pg_result *res)
{
    answer_t *a = calloc(1, sizeof(*a));
    if (!a)
        abort();
    a->kind = kind;
    if (res)
        a->res = *res;
    if (c->tail)
        c->tail->next = a;
    else
        c->head = a;
    c->tail = a;
    uint64_t one = 1;
    if (write(c->fd, &one, sizeof(one)) != sizeof(one))
        abort();
}

/* Answers one statement: @p is_exec for a prepared statement's EXECUTE
 * (which returns rows), else a command. */
static void answer(PGconn *c, int is_exec)
{
    if (c->lost)
        return;
    struct pg_result r = {0};
    if (c->aborted) {
        r.status = PGRES_PIPELINE_ABORTED;
        push(c, A_RESULT, &r);
        push(c, A_END, NULL);
        return;
    }
    char tok[128];
    next_token(tok, sizeof(tok));
    if (strcmp(tok, "lost") == 0) {
        c->lost = 1;
        push(c, A_LOST, NULL);
        return;
    }
    if (strncmp(tok, "err=", 4) == 0) {
        r.status = PGRES_FATAL_ERROR;
        const char *colon = strchr(tok + 4, ':');
        size_t n = colon ? (size_t)(colon - (tok + 4)) : strlen(tok + 4);
        if (n >= sizeof(r.sqlstate))
            n = sizeof(r.sqlstate) - 1;
        memcpy(r.sqlstate, tok + 4, n);
        if (colon)
            snprintf(r.constraint, sizeof(r.constraint), "%s", colon + 1);
        r.is_error = 1;
        c->aborted = 1;
    } else if (strncmp(tok, "row=", 4) == 0) {
        r.status = PGRES_TUPLES_OK;
        r.ntuples = 1;
        snprintf(r.value, sizeof(r.value), "%s", tok + 4);
    } else if (strcmp(tok, "ok") == 0) {
        r.status = is_exec ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
        r.ntuples = is_exec;
        snprintf(r.value, sizeof(r.value), "1");
    } else {
        fprintf(stderr, "harness_pq: unknown answer '%s'\n", tok);
        abort();
    }
    push(c, A_RESULT, &r);
    push(c, A_END, NULL);
}

/* ---- libpq ------------------------------------------------------------- */

PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname)
{
    (void)keywords;
    (void)values;
    (void)expand_dbname;
    PGconn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->fd = -1;
    if (H.fail_connects > 0) {
        H.fail_connects--;
        c->status = CONNECTION_BAD;
        return c;
    }
    c->status = CONNECTION_OK;
    c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->fd < 0)
        abort();
    return c;
}

PGconn *PQconnectStartParams(const char *const *keywords, const char *const *values,
                             int expand_dbname)
{
    (void)keywords;
    (void)values;
    (void)expand_dbname;
    PGconn *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    H.connects_started++;
    c->status = CONNECTION_STARTED;
    c->setup = 1;
    c->polls_left = H.connect_polls;
    if (H.fail_connects > 0) {
        H.fail_connects--;
        c->fail = 1;
    } else if (H.stall_connects > 0) {
        H.stall_connects--;
        c->stall = 1;
    }
    c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->fd < 0)
        abort();
    return c;
}

/* Asks alternately to read (the socket made readable, as a server's answer
 * would) and to write (an eventfd is always writable), then answers. */
PostgresPollingStatusType PQconnectPoll(PGconn *conn)
{
    H.polls++;
    uint64_t n;
    while (read(conn->fd, &n, sizeof(n)) > 0)
        ;
    if (conn->stall)
        return PGRES_POLLING_READING;
    if (conn->polls_left > 0) {
        if (conn->polls_left-- % 2 == 1) {
            uint64_t one = 1;
            if (write(conn->fd, &one, sizeof(one)) != sizeof(one))
                abort();
            return PGRES_POLLING_READING;
        }
        return PGRES_POLLING_WRITING;
    }
    if (conn->fail) {
        conn->status = CONNECTION_BAD;
        return PGRES_POLLING_FAILED;
    }
    conn->status = CONNECTION_OK;
    return PGRES_POLLING_OK;
}

ConnStatusType PQstatus(const PGconn *conn)
{
    return conn ? conn->status : CONNECTION_BAD;
}

char *PQerrorMessage(const PGconn *conn)
{
    (void)conn;
    static char msg[] = "harness: connection refused";
    return msg;
}

PQnoticeReceiver PQsetNoticeReceiver(PGconn *conn, PQnoticeReceiver proc, void *arg)
{
    (void)conn;
    (void)proc;
    (void)arg;
    return NULL;
}

char *PQhost(const PGconn *conn)
{
    (void)conn;
    static char host[] = "harness";
    return host;
}

char *PQport(const PGconn *conn)
{
    (void)conn;
    static char port[] = "5432";
    return port;
}

char *PQdb(const PGconn *conn)
{
    (void)conn;
    static char db[] = "harness";
    return db;
}

void PQfinish(PGconn *conn)
{
    if (!conn)
        return;
    for (answer_t *a = conn->head, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn);
}

PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                    const Oid *paramTypes)
{
    (void)conn;
    (void)query;
    (void)nParams;
    (void)paramTypes;
    log_sent("SETUP PREPARE", stmtName);
    PGresult *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->status = PGRES_COMMAND_OK;
    return r;
}

/* A blocking query (the rewind check): logged "EXECP" and its SQL, answered
 * from the script like a prepared statement (row=V, err=..., ok). */
PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths,
                       const int *paramFormats, int resultFormat)
{
    (void)paramTypes;
    (void)paramLengths;
    (void)paramFormats;
    (void)resultFormat;
    char what[256];
    size_t n = (size_t)snprintf(what, sizeof(what), "%s", command);
    for (int i = 0; i < nParams && n < sizeof(what); i++)
        n += (size_t)snprintf(what + n, sizeof(what) - n, " [%s]",
                              paramValues && paramValues[i] ? paramValues[i] : "NULL");
    log_sent("EXECP", what);
    conn->aborted = 0;
    answer(conn, 1);
    PGresult *r = PQgetResult(conn);
    while (conn->head) {
        PGresult *more = PQgetResult(conn);
        if (!more && conn->head && conn->head->kind == A_LOST)
            break;
        PQclear(more);
    }
    uint64_t v;
    while (read(conn->fd, &v, sizeof(v)) > 0)
        ;
    if (conn->lost)
        conn->status = CONNECTION_BAD;
    conn->aborted = 0;
    return r;
}

/* The blocking connect's identity query: answered by harness_pq_identity,
 * not from the script, and not logged (a setup statement). */
PGresult *PQexec(PGconn *conn, const char *command)
{
    (void)conn;
    PGresult *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    if (strstr(command, "db_identity"))
        *r = identity_result();
    else
        r->status = PGRES_COMMAND_OK;
    return r;
}

int PQsetnonblocking(PGconn *conn, int arg)
{
    (void)conn;
    (void)arg;
    return 0;
}

int PQenterPipelineMode(PGconn *conn)
{
    (void)conn;
    return 1;
}

int PQsocket(const PGconn *conn)
{
    return conn->fd;
}

int PQsendQueryParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                      const char *const *paramValues, const int *paramLengths,
                      const int *paramFormats, int resultFormat)
{
    (void)nParams;
    (void)paramTypes;
    (void)paramValues;
    (void)paramLengths;
    (void)paramFormats;
    (void)resultFormat;
    if (conn->setup && strstr(command, "db_identity")) {
        struct pg_result r = identity_result();
        push(conn, A_RESULT, &r);
        push(conn, A_END, NULL);
        return 1;
    }
    log_sent(command, NULL);
    answer(conn, 0);
    return 1;
}

int PQsendPrepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                  const Oid *paramTypes)
{
    (void)query;
    (void)nParams;
    (void)paramTypes;
    if (conn->setup) {
        log_sent("SETUP PREPARE", stmtName);
        struct pg_result r = {.status = PGRES_COMMAND_OK};
        push(conn, A_RESULT, &r);
        push(conn, A_END, NULL);
        return 1;
    }
    log_sent("PREPARE", stmtName);
    answer(conn, 0);
    return 1;
}

int PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams,
                        const char *const *paramValues, const int *paramLengths,
                        const int *paramFormats, int resultFormat)
{
    (void)nParams;
    (void)paramValues;
    (void)paramLengths;
    (void)paramFormats;
    (void)resultFormat;
    log_sent("EXEC", stmtName);
    answer(conn, 1);
    return 1;
}

int PQpipelineSync(PGconn *conn)
{
    log_sent("SYNC", NULL);
    if (!conn->lost) {
        struct pg_result r = {.status = PGRES_PIPELINE_SYNC};
        push(conn, A_RESULT, &r);
    }
    conn->aborted = 0;
    conn->setup = 0;
    return 1;
}

int PQflush(PGconn *conn)
{
    (void)conn;
    return 0;
}

/* An answer may be read; at a broken connection's end, it is reported bad. */
static int at_loss(PGconn *conn)
{
    if (conn->head && conn->head->kind == A_LOST) {
        conn->status = CONNECTION_BAD;
        return 1;
    }
    return 0;
}

int PQconsumeInput(PGconn *conn)
{
    uint64_t n;
    while (read(conn->fd, &n, sizeof(n)) > 0)
        ;
    return at_loss(conn) ? 0 : 1;
}

int PQisBusy(PGconn *conn)
{
    return !conn->head || at_loss(conn);
}

PGresult *PQgetResult(PGconn *conn)
{
    answer_t *a = conn->head;
    if (!a || a->kind == A_LOST)
        return NULL;
    conn->head = a->next;
    if (!conn->head)
        conn->tail = NULL;
    PGresult *r = NULL;
    if (a->kind == A_RESULT) {
        r = malloc(sizeof(*r));
        if (!r)
            abort();
        *r = a->res;
    }
    free(a);
    return r;
}

ExecStatusType PQresultStatus(const PGresult *res)
{
    return res ? res->status : PGRES_FATAL_ERROR;
}

char *PQresultErrorMessage(const PGresult *res)
{
    (void)res;
    static char msg[] = "harness: error";
    return msg;
}

char *PQresultErrorField(const PGresult *res, int fieldcode)
{
    if (!res)
        return NULL;
    struct pg_result *r = (struct pg_result *)res;
    if (fieldcode == PG_DIAG_SQLSTATE && r->sqlstate[0])
        return r->sqlstate;
    if (fieldcode == PG_DIAG_CONSTRAINT_NAME && r->constraint[0])
        return r->constraint;
    /* what a server says about a row of another clinic: PHI and that
     * clinic's id; pgscribe must pass neither on */
    if (fieldcode == PG_DIAG_MESSAGE_PRIMARY && r->is_error)
        return "invalid input value \"Secretname\"";
    if (fieldcode == PG_DIAG_MESSAGE_DETAIL && r->is_error)
        return "Key (clinic_id, id)=(clinic-other, 0b3c0f4e-0000-4000-8000-000000000000) "
               "already exists.";
    return NULL;
}

int PQntuples(const PGresult *res)
{
    return res ? res->ntuples : 0;
}

char *PQgetvalue(const PGresult *res, int tup_num, int field_num)
{
    (void)tup_num;
    (void)field_num;
    return ((struct pg_result *)res)->value;
}

void PQclear(PGresult *res)
{
    free(res);
}
