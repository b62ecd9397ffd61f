/* Apply pool internals shared by pool.c (connections), txn.c (sending a
 * transaction) and settle.c (reading and settling its results). */
#ifndef PGSCRIBE_POOL_INTERNAL_H
#define PGSCRIBE_POOL_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/concurrency.h"
#include "policy/lograte.h"
#include "policy/resilience.h"
#include "run/pool.h"
#include "run/profile.h"
#include "run/work.h" /* pgs_work_t's fields; the pool uses no worker state */
#include "sql/statements.h"

/* What each result of the pipeline answers, in the order they come back. */
typedef enum {
    R_BEGIN,
    R_CLINIC,
    R_PREPARE,
    R_DEALLOCATE,  /* of a statement the registry evicted; before BEGIN */
    R_CMD,         /* single-command statement of batch index idx */
    R_MULTI,       /* multi-row statement of group idx */
    R_WRITE_AUDIT, /* the transaction's write audit (txnaudit.h), before COMMIT */
    R_COMMIT,
    R_ROLLBACK,
    R_SYNC
} rkind_t;

typedef struct {
    rkind_t kind;
    int idx;   /* batch index (R_CMD) or group (R_MULTI); for R_PREPARE, of what follows */
    int multi; /* R_PREPARE: it precedes an R_MULTI */
    int stmt;  /* R_PREPARE: statement handle */
    int prof;  /* R_CMD, R_MULTI: the shape's profile slot, or -1 */
    int64_t sent_us;
} rexp_t;

/* C_SPARE: never opened, because the adaptive in-flight limit has not
 * needed it yet; it becomes C_DOWN (to be opened) when the limit grows.
 * C_CONNECTING: PQconnectPoll is driven by the socket's readiness in the
 * event loop; C_SETUP: connected, the setup PREPAREs are in flight and the
 * connection takes no transaction until their sync confirms them. */
typedef enum { C_DOWN = 0, C_IDLE, C_BUSY, C_SPARE, C_CONNECTING, C_SETUP } cstate_t;

/* A PREPARE sent in a pipeline that then aborts never happens, so a shape
 * counts as prepared only once the server has confirmed it. */
enum { PREP_NONE = 0, PREP_SENT, PREP_DONE };

typedef struct pgs_conn_s {
    pgs_pool_t *pool;
    int id;
    PGconn *pg;
    int fd;
    cstate_t state;
    unsigned char *prepared;   /* by registry slot: PREP_NONE, PREP_SENT, PREP_DONE */
    uint64_t *prepared_serial; /* by registry slot: the statement prepared there */
    size_t prepared_cap;
    pgs_work_t **batch;
    int nbatch;
    int *fresh;       /* per batch index: 1 applied, 0 duplicate (single statements) */
    int *group_of;    /* per batch index: multi-row group, or -1 */
    int *group_stmt;  /* per group: statement id */
    int *group_size;  /* per group: commands */
    int *group_fresh; /* per group: commands applied */
    int ngroups;
    int fail_group; /* multi-row group at fault, or -1 */
    rexp_t *exp;
    int nexp, exp_pos, exp_cap;
    int failed;      /* an error was seen before the sync */
    int fail_cmd;    /* batch index at fault, or -1 */
    int fail_outage; /* the error says the database is going away */
    int commit_ok;   /* COMMIT answered OK: the transaction is durable */
    int fail_commit; /* COMMIT itself failed with a permanent error */
    pgs_err_t fail_err;
    char fail_code[8];
    char fail_msg[256];
    int in_rollback;
    int want_write;
    int64_t started_us;
    int64_t next_connect_us;
    int64_t connect_deadline_us; /* C_CONNECTING or C_SETUP gives up then */
    uint32_t watching;           /* the epoll events asked for while connecting */
    int setup_left;              /* C_SETUP: results (and ends) still to read */
    int setup_seen;              /* C_SETUP: results read (the prepares, then the identity) */
    int setup_failed;
    char setup_identity[48]; /* C_SETUP: the database's "SYSID/TIMELINE", "" unknown */
    int probing;             /* this connect is the open breaker's probe */
    int connect_failures;
    int ever_opened;
} pgs_conn_t;

/* Connection parameters, built once per pool: pgscribe's defaults
 * (timeouts, keepalives) come before the user's conninfo, which libpq
 * expands last so its own settings win; `options` comes after it, carrying
 * idle_in_transaction_session_timeout and plan_cache_mode ahead of the
 * user's own options. */
#define PGS_CONN_PARAMS_MAX 12
typedef struct {
    const char *keys[PGS_CONN_PARAMS_MAX];
    const char *vals[PGS_CONN_PARAMS_MAX];
    char num[6][24];
    char *options;
    int64_t connect_timeout_us; /* enforced by the pool: PQconnectPoll ignores it */
} pgs_conn_params_t;

struct pgs_pool_s {
    pgs_pool_ops_t ops;
    void *opaque;
    char *name, *topic, *conninfo;
    int audit;
    int max_batch;
    pgs_lanes_t *lanes;
    const pgs_config_t *cfg;
    pgs_latency_t audit_latency;
    pgs_conn_t *conns;
    int nconns;
    pgs_stmts_t *stmts;
    pgs_lograte_t down_log; /* "postgresql unreachable" lines (connect.c) */
    pgs_breaker_t breaker;
    pgs_concurrency_t conc; /* how many of the connections may be busy */
    uint64_t rng;
    pgs_work_t **waiting; /* works in retry backoff; their lanes stay blocked */
    size_t nwaiting, waiting_cap;
    pgs_conn_params_t params;
    pgs_profile_t *profile;    /* NULL: no statement profile */
    char identity[48];         /* "SYSID/TIMELINE" for resume floors, "" none recorded */
    char expect_identity[48];  /* that of the last rewind check, kept: "" unknown */
    char changed_identity[48]; /* another database's, seen on a connect: "" none */
    int audit_slot[2];         /* the audit statement's profile slots (single, multi), plus 1 */
    int write_audit_slot;      /* the write audit statement's profile slot, plus 1 */
};

/* connect.c */
/** @brief Builds @p p from the user's @p conninfo and the pg.* settings. */
void pgs_connect_params_init(pgs_conn_params_t *p, const char *conninfo, const pgs_config_t *cfg);
void pgs_connect_params_free(pgs_conn_params_t *p);
/** @brief Opens @p c blocking (pool creation only): connected, prepared,
 *         nonblocking and in pipeline mode, or -1. */
int pgs_connect_open_blocking(pgs_conn_t *c);
/** @brief Starts a non-blocking connect of @p c (C_CONNECTING), or -1 when it
 *         failed at once (the failure is counted and backed off). */
int pgs_connect_start(pgs_conn_t *c);
/** @brief Socket readiness for a C_CONNECTING or C_SETUP connection. */
void pgs_connect_on_event(pgs_conn_t *c, uint32_t events);
/** @brief A connect under way for longer than connect_timeout fails. */
void pgs_connect_check_timeout(pgs_conn_t *c, int64_t now);

/* pool.c */
/** @brief The connection is gone: settles or requeues its batch. */
void pgs_pool_conn_down(pgs_conn_t *c, const char *why);
/** @brief Flushes the pipeline; waits for writability while libpq has more. */
void pgs_pool_conn_flush(pgs_conn_t *c);
const char *pgs_pool_work_clinic(const pgs_work_t *wk);
/** @brief What a log line or error says a work is: names only, never values. */
const char *pgs_pool_work_op(const pgs_work_t *wk);
const char *pgs_pool_work_entity(const pgs_work_t *wk);

/* txn.c */
/** @brief Sends one transaction for works[0..n) (all of one clinic).
 *  @returns 0, or -1 when libpq would not take it (the connection is bad). */
/** pgs_txn_start's answer to a batch holding commands of two clinics. */
#define PGS_TXN_MIXED_CLINICS (-2)
/** @returns the index of the first work whose clinic differs from the
 *           first's, or @p n when all @p n are of one clinic. */
int pgs_txn_one_clinic(pgs_work_t *const *works, int n);
/**
 * @brief Sends one transaction of @p works on @p c.
 * @returns 0; -1 when the connection failed to take it; PGS_TXN_MIXED_CLINICS,
 *          sending nothing, when @p works are not all of one clinic.
 */
int pgs_txn_start(pgs_conn_t *c, pgs_work_t **works, int n);
/** @brief Appends the result the pipeline will answer next. */
void pgs_txn_expect(pgs_conn_t *c, rkind_t kind, int idx);
/** @brief Marks the statement of handle @p sid PREP_NONE/SENT/DONE on @p c. */
void pgs_txn_set_prepared(pgs_conn_t *c, int sid, int on);
/** @brief Feeds the adaptive timeouts with a committed transaction's time,
 *         for each statement it used that the registry still holds. */
void pgs_txn_record_latency(pgs_conn_t *c, int64_t took);
/** @brief After a failed pipeline: every PREPARE not confirmed did not happen. */
void pgs_txn_forget_unconfirmed(pgs_conn_t *c);

/* settle.c */
/** @brief Reads what the server has sent and settles finished transactions. */
void pgs_settle_read(pgs_conn_t *c);
/** @brief The transaction committed: reports its works applied. */
void pgs_settle_succeeded(pgs_conn_t *c);
/** @brief Gives the batch back to its lanes, spending no attempt; @p skip is
 *         a batch index left alone, or -1. */
void pgs_settle_requeue(pgs_conn_t *c, int skip);
/** @brief Works whose backoff has passed go back to the front of their lanes. */
void pgs_settle_retry_due(pgs_pool_t *pool, int64_t now);
/** @brief @p wk (taken from its lane, which stays blocked) waits until
 *         @p until_us, then goes back to the front of its lane. */
void pgs_settle_hold(pgs_pool_t *pool, pgs_work_t *wk, int64_t until_us);

#endif
