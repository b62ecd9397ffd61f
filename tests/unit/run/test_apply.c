/* Unit tests: the apply pool's transactions and their outcomes, against a
 * scripted libpq (harness_pq.c) instead of PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "harness_pq.h"
#include "run/pool.h"
#include "run/pool_internal.h"
#include "run/worker.h"

#define MAX_WORKS 16

/* What became of work number i (its offset). */
typedef enum { W_PENDING = 0, W_APPLIED, W_DEAD } fate_t;

typedef struct {
    pgs_config_t *cfg;
    pgs_catalog_t *cat;
    pgs_lanes_t *lanes;
    pgs_pool_t *pool;
    int epfd;
    pgs_partition_t part;
    char ids[MAX_WORKS][37];
    int nworks;
    /* outcomes the callbacks received */
    fate_t fate[MAX_WORKS];
    int attempts[MAX_WORKS];
    int in_doubt[MAX_WORKS];
    int applied_calls;
    int applied_n[8], applied_fresh[8];
    int retried;
    int ndead;
    char dead_code[MAX_WORKS][24];
    char dead_msg[MAX_WORKS][256];
    pgs_err_t dead_err[MAX_WORKS];
    int finished;
} fx_t;

static void work_done(fx_t *fx, pgs_work_t *wk, fate_t fate)
{
    int i = (int)wk->offset;
    assert_int_equal(fx->fate[i], W_PENDING);
    fx->fate[i] = fate;
    fx->attempts[i] = wk->attempts;
    fx->in_doubt[i] = wk->in_doubt;
    fx->finished++;
    pgs_lanes_complete(fx->lanes, &wk->lane);
    pgs_command_free(wk->cmd);
    free(wk);
}

static int fx_watch(void *opaque, int fd, uint32_t events, void *tag, pgs_pool_watch_t op)
{
    fx_t *fx = opaque;
    struct epoll_event ev = {.events = events, .data.ptr = tag};
    int eop = op == PGS_POOL_WATCH_ADD   ? EPOLL_CTL_ADD
              : op == PGS_POOL_WATCH_MOD ? EPOLL_CTL_MOD
                                         : EPOLL_CTL_DEL;
    return epoll_ctl(fx->epfd, eop, fd, &ev);
}

static void fx_applied(void *opaque, pgs_work_t **works, int n, int fresh, int64_t took_us,
                       const char *clinic_id)
{
    fx_t *fx = opaque;
    (void)took_us;
    /* every command of a committed transaction is of the clinic it ran as */
    for (int i = 0; i < n; i++)
        assert_string_equal(works[i]->cmd->clinic_id, clinic_id);
    assert_true(fx->applied_calls < 8);
    fx->applied_n[fx->applied_calls] = n;
    fx->applied_fresh[fx->applied_calls] = fresh;
    fx->applied_calls++;
    for (int i = 0; i < n; i++)
        work_done(fx, works[i], W_APPLIED);
}

static void fx_retried(void *opaque, pgs_work_t *wk, const char *code, int64_t delay_us)
{
    fx_t *fx = opaque;
    (void)wk;
    (void)code;
    (void)delay_us;
    fx->retried++;
}

static void fx_dead_letter(void *opaque, pgs_work_t *wk, pgs_err_t err, const char *code,
                           const char *msg)
{
    fx_t *fx = opaque;
    int i = (int)wk->offset;
    snprintf(fx->dead_code[i], sizeof(fx->dead_code[i]), "%s", code ? code : "");
    snprintf(fx->dead_msg[i], sizeof(fx->dead_msg[i]), "%s", msg ? msg : "");
    fx->dead_err[i] = err;
    fx->ndead++;
    work_done(fx, wk, W_DEAD);
}

static const pgs_pool_ops_t fx_ops = {
    .watch = fx_watch,
    .applied = fx_applied,
    .retried = fx_retried,
    .dead_letter = fx_dead_letter,
};

static void fx_set(fx_t *fx, const char *key, const char *value)
{
    char err[256];
    assert_int_equal(pgs_config_set(fx->cfg, key, value, err, sizeof(err)), 0);
}

static int setup(void **state)
{
    harness_pq_reset();
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->cfg = pgs_config_new();
    /* one statement per command unless a test asks for multi-row ones */
    fx_set(fx, "apply.multi_row_min", "1000");
    fx_set(fx, "retry.backoff_initial_ms", "5");
    fx_set(fx, "retry.backoff_max_ms", "10");
    fx->cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(fx->cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    pgs_catalog_entity_add_column(e, "version", "bigint", 20, 0, 1, 1, 0);
    pgs_catalog_entity_add_column(e, "updated_at", "timestamp with time zone", 1184, 0, 1, 1, 0);
    for (int i = 0; i < 4; i++) {
        char col[16];
        snprintf(col, sizeof(col), "extra_%d", i);
        pgs_catalog_entity_add_column(e, col, "text", 25, 0, 0, 0, 0);
    }
    fx->lanes = pgs_lanes_new();
    fx->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(fx->epfd >= 0);
    fx->part.partition = 3;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    pgs_pool_free(fx->pool);
    pgs_lanes_free(fx->lanes);
    pgs_catalog_free(fx->cat);
    pgs_config_free(fx->cfg);
    close(fx->epfd);
    free(fx);
    return 0;
}

static void fx_pool(fx_t *fx)
{
    pgs_pool_settings_t set = {
        .name = "commands",
        .topic = "clinic.commands",
        .conninfo = "host=harness",
        .schema = pgs_catalog_schema(fx->cat),
        .size = 1,
        .max_batch = 10,
        .lanes = fx->lanes,
        .cfg = fx->cfg,
    };
    char err[256];
    fx->pool = pgs_pool_new(&set, &fx_ops, fx, err, sizeof(err));
    assert_non_null(fx->pool);
}

/* Queues @p n UPSERTs of patients, each of its own key (so one transaction
 * can carry them all), clinic c1; work i has offset i. A patient's name is
 * PHI: it must not reach a dead letter's message. */
static void fx_works_op(fx_t *fx, int n, pgs_op_t op)
{
    for (int i = 0; i < n; i++) {
        int k = fx->nworks++;
        snprintf(fx->ids[k], sizeof(fx->ids[k]), "0b3c0f4e-0000-4000-8000-%012d", k);
        pgs_command_t *c = pgs_command_new();
        c->command_id = fx->ids[k];
        c->clinic_id = "c1";
        c->actor = "svc-test";
        c->entity = "patients";
        c->op = op;
        c->key = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
        c->data = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
        c->key[0] = (pgs_field_t){.name = "id", .value = {.type = PGS_VAL_STRING}};
        c->key[0].value.u.s.ptr = fx->ids[k];
        c->key[0].value.u.s.len = strlen(fx->ids[k]);
        c->key_cnt = 1;
        c->data[0] = (pgs_field_t){.name = "given_name", .value = {.type = PGS_VAL_STRING}};
        c->data[0].value.u.s.ptr = "Secretname";
        c->data[0].value.u.s.len = 10;
        c->data_cnt = 1;
        pgs_work_t *wk = calloc(1, sizeof(*wk));
        wk->cmd = c;
        wk->part = &fx->part;
        wk->offset = k;
        char err[256];
        assert_int_equal(pgs_catalog_validate(fx->cat, c, &wk->ent, err, sizeof(err)), PGS_OK);
        assert_int_equal(pgs_sqlgen_shape_of(wk->ent, c, &wk->shape), 0);
        wk->in_lane = 1;
        pgs_lanes_push(fx->lanes, &wk->lane, "c1", fx->ids[k], strlen(fx->ids[k]));
    }
}

static void fx_works(fx_t *fx, int n)
{
    fx_works_op(fx, n, PGS_OP_UPSERT);
}

/* One turn of the worker's loop, as far as the pool is concerned. */
static void fx_step(fx_t *fx)
{
    pgs_pool_dispatch(fx->pool);
    struct epoll_event evs[8];
    int n = epoll_wait(fx->epfd, evs, 8, 5);
    for (int i = 0; i < n; i++)
        pgs_pool_on_event(fx->pool, evs[i].data.ptr, evs[i].events);
    pgs_pool_tick(fx->pool);
}

/* Drives the pool until @p finished works are settled or @p timeout_ms pass. */
static void fx_run(fx_t *fx, int finished, int timeout_ms)
{
    int64_t deadline = pgs_clock_now_us() + (int64_t)timeout_ms * 1000;
    while (fx->finished < finished && pgs_clock_now_us() < deadline)
        fx_step(fx);
    assert_int_equal(fx->finished, finished);
}

/* The third of five commands fails with a unique violation: it alone is
 * dead-lettered with its SQLSTATE; the other four go back to their lanes,
 * spending no attempt, and apply in the next transaction. */
static void test_permanent_error_dead_letters_only_the_culprit(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 5);
    /* BEGIN, setup, PREPARE, command 0, command 1, command 2 */
    harness_pq_script("ok ok ok ok ok err=23505:patients_pkey");
    fx_run(fx, 5, 2000);

    assert_int_equal(fx->ndead, 1);
    assert_int_equal(fx->fate[2], W_DEAD);
    assert_string_equal(fx->dead_code[2], "23505");
    assert_int_equal(fx->dead_err[2], PGS_E_DB_PERMANENT);
    assert_int_equal(fx->attempts[2], 1);
    assert_non_null(strstr(fx->dead_msg[2], "constraint patients_pkey"));
    assert_null(strstr(fx->dead_msg[2], "Secretname"));
    assert_null(strstr(fx->dead_msg[2], "clinic-other"));
    assert_null(strstr(fx->dead_msg[2], "Key ("));
    assert_null(strstr(fx->dead_msg[2], fx->ids[0]));
    for (int i = 0; i < 5; i++) {
        if (i == 2)
            continue;
        assert_int_equal(fx->fate[i], W_APPLIED);
        assert_int_equal(fx->attempts[i], 0);
    }
    assert_int_equal(fx->applied_calls, 1);
    assert_int_equal(fx->applied_n[0], 4);
    assert_int_equal(fx->applied_fresh[0], 4);
    assert_int_equal(harness_pq_count("BEGIN"), 2);
    assert_int_equal(harness_pq_count("ROLLBACK"), 1);
    assert_int_equal(harness_pq_count("COMMIT"), 2);
    /* the PREPARE was confirmed before the error: not sent again */
    assert_int_equal(harness_pq_count("PREPARE pgs_s"), 1);
    assert_int_equal(harness_pq_count("EXEC pgs_s"), 5 + 4);
}

/* An UPDATE that matches no row (missing here, or another clinic's, which
 * RLS hides): the message is the same fixed sentence whatever the server
 * said, naming neither the key, the value nor another clinic. */
static void test_no_row_message_is_fixed(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works_op(fx, 1, PGS_OP_UPDATE);
    /* BEGIN, setup, PREPARE, the command */
    harness_pq_script("ok ok ok err=PS001");
    fx_run(fx, 1, 2000);
    assert_int_equal(fx->ndead, 1);
    assert_string_equal(fx->dead_code[0], "PS001");
    assert_int_equal(fx->dead_err[0], PGS_E_DB_ROW_PRECONDITION);
    assert_string_equal(fx->dead_msg[0], "UPDATE on patients matched no row (missing, or version "
                                         "differs from expected_version)");
}

/* The connection breaks after COMMIT is sent, before its answer: no command
 * is at fault. The batch goes again on a new connection, in doubt; finding
 * their ids already recorded, the commands count as applied (this worker's
 * lost transaction committed them), and none is dead-lettered. */
static void test_lost_connection_mid_commit_resends_in_doubt(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 3);
    /* BEGIN, setup, PREPARE, three commands, COMMIT lost; then on the new
     * connection BEGIN, setup, PREPARE, three duplicates, COMMIT */
    harness_pq_script("ok ok ok ok ok ok lost ok ok ok row=0 row=0 row=0 ok");
    fx_run(fx, 3, 3000);

    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->retried, 0);
    assert_int_equal(fx->applied_calls, 1);
    assert_int_equal(fx->applied_n[0], 3);
    assert_int_equal(fx->applied_fresh[0], 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->fate[i], W_APPLIED);
        assert_int_equal(fx->in_doubt[i], 1);
        assert_int_equal(fx->attempts[i], 0); /* a lost connection spends none */
    }
    assert_int_equal(harness_pq_left(), 0);
    assert_int_equal(harness_pq_count("SETUP PREPARE pgs_txn_setup"), 2);
    /* a new connection has no prepared statements */
    assert_int_equal(harness_pq_count("PREPARE pgs_s"), 2);
    assert_int_equal(harness_pq_count("COMMIT"), 2);
    assert_string_equal(pgs_pool_breaker_state(fx->pool), "closed");
}

/* A serialization failure is transient: the command at fault waits out its
 * backoff (its lane blocked), the others go again at once, then it is
 * retried and applies; one attempt is counted. */
static void test_retryable_error_backs_off_and_applies(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 3);
    /* BEGIN, setup, PREPARE, command 0, command 1 fails */
    harness_pq_script("ok ok ok ok err=40001");
    int64_t deadline = pgs_clock_now_us() + 2000000;
    while (fx->retried == 0 && pgs_clock_now_us() < deadline)
        fx_step(fx);
    /* settled, the failed transaction left the culprit in backoff and the
     * others back in their lanes, none of them finished */
    assert_int_equal(fx->retried, 1);
    assert_int_equal(pgs_pool_waiting(fx->pool), 1);
    assert_int_equal(fx->finished, 0);
    fx_run(fx, 3, 2000);

    assert_int_equal(fx->ndead, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->fate[i], W_APPLIED);
    assert_int_equal(fx->attempts[1], 1);
    assert_int_equal(fx->attempts[0], 0);
    assert_int_equal(fx->attempts[2], 0);
    /* the others may go at once or with the culprit if its backoff is short */
    int applied = 0;
    for (int i = 0; i < fx->applied_calls; i++)
        applied += fx->applied_fresh[i];
    assert_int_equal(applied, 3);
    assert_int_equal(pgs_pool_waiting(fx->pool), 0);
    assert_int_equal(harness_pq_count("BEGIN"), 1 + fx->applied_calls);
}

/* A command that keeps failing transiently is dead-lettered once its
 * attempts are used up, as a transient error with its SQLSTATE. */
static void test_retryable_error_out_of_attempts_dead_letters(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "retry.max_attempts", "2");
    fx_pool(fx);
    fx_works(fx, 1);
    /* BEGIN, setup, PREPARE, command fails; ROLLBACK; BEGIN, setup, fails */
    harness_pq_script("ok ok ok err=40001 ok ok ok err=40001");
    fx_run(fx, 1, 2000);

    assert_int_equal(fx->ndead, 1);
    assert_int_equal(fx->retried, 1);
    assert_int_equal(fx->attempts[0], 2);
    assert_string_equal(fx->dead_code[0], "40001");
    assert_int_equal(fx->dead_err[0], PGS_E_DB_TRANSIENT);
    assert_int_equal(fx->applied_calls, 0);
}

/* Past the old count but within the time budget: with retry.max_attempts 0
 * (the default) a command failing transiently twelve times in a row is
 * retried each time and applies; nothing is dead-lettered. */
static void test_retryable_error_past_count_within_budget_retries(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(pgs_config_int(fx->cfg, "retry.max_attempts"), 0);
    fx_pool(fx);
    fx_works(fx, 1);
    /* BEGIN, setup, PREPARE, command fails; then eleven times ROLLBACK,
     * BEGIN, setup, command fails; then ROLLBACK and the rest ok */
    harness_pq_script("ok ok ok err=40001");
    for (int i = 0; i < 11; i++)
        harness_pq_script(i % 2 ? "ok ok ok err=40P01" : "ok ok ok err=55P03");
    fx_run(fx, 1, 5000);

    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->fate[0], W_APPLIED);
    assert_int_equal(fx->attempts[0], 12);
    assert_int_equal(fx->retried, 12);
    assert_int_equal(harness_pq_left(), 0);
}

/* Past the time budget: a command that keeps failing is dead-lettered at the
 * first failure after retry.max_elapsed_ms from its first one, as a
 * transient error with the SQLSTATE, however few its attempts. */
static void test_retryable_error_past_budget_dead_letters(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "retry.max_elapsed_ms", "1000");
    fx_set(fx, "retry.backoff_initial_ms", "150");
    fx_set(fx, "retry.backoff_max_ms", "300");
    fx_pool(fx);
    fx_works(fx, 1);
    harness_pq_script("ok ok ok err=57014");
    for (int i = 0; i < 150; i++)
        harness_pq_script("ok ok ok err=57014");
    int64_t t0 = pgs_clock_now_us();
    fx_run(fx, 1, 5000);
    int64_t took = pgs_clock_now_us() - t0;

    assert_int_equal(fx->ndead, 1);
    assert_string_equal(fx->dead_code[0], "57014");
    assert_int_equal(fx->dead_err[0], PGS_E_DB_TRANSIENT);
    assert_true(took >= 1000000);
    assert_true(took < 3000000);
    /* the budget, not a count, ended it: more than one attempt, far fewer
     * than the script held */
    assert_true(fx->attempts[0] > 1);
    assert_true(fx->attempts[0] < 100);
    assert_int_equal(fx->retried, fx->attempts[0] - 1);
    assert_true(harness_pq_left() > 0);
}

/* A reconnect opens without blocking: the connect takes several polls, each
 * run when epoll reports the socket ready, and the connection takes the
 * batch back only after its setup statement is confirmed. */
static void test_reconnect_takes_several_polls(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 2);
    harness_pq_connect_polls(5);
    /* BEGIN, setup, PREPARE, command 0, then the connection breaks */
    harness_pq_script("ok ok ok ok lost");
    int seen_connecting = 0, seen_setup = 0;
    int64_t deadline = pgs_clock_now_us() + 3000000;
    while (fx->finished < 2 && pgs_clock_now_us() < deadline) {
        fx_step(fx);
        cstate_t st = fx->pool->conns[0].state;
        seen_connecting |= st == C_CONNECTING;
        seen_setup |= st == C_SETUP;
        /* while connecting, a connection has no transaction */
        if (st == C_CONNECTING || st == C_SETUP)
            assert_int_equal(fx->pool->conns[0].nbatch, 0);
    }
    assert_int_equal(fx->finished, 2);
    assert_true(seen_connecting);
    assert_true(seen_setup);
    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->fate[0], W_APPLIED);
    assert_int_equal(fx->fate[1], W_APPLIED);
    assert_int_equal(harness_pq_connects_started(), 1);
    assert_int_equal(harness_pq_polls(), 6); /* five asked for, then OK */
    /* the blocking first connection's setup, then the pipelined one */
    assert_int_equal(harness_pq_count("SETUP PREPARE pgs_txn_setup"), 2);
    assert_int_equal(harness_pq_count("BEGIN"), 2);
}

/* A reconnect that fails at its last poll goes down and is retried after a
 * backoff; one that stalls (a silent server) is abandoned at
 * pg.connect_timeout_ms. Neither loses or dead-letters a command. */
static void test_reconnect_failure_and_timeout_retry(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "pg.connect_timeout_ms", "300");
    fx_pool(fx);
    fx_works(fx, 1);
    harness_pq_connect_polls(2);
    harness_pq_fail_connects(1);
    harness_pq_stall_connects(2); /* the first fails before it could stall */
    harness_pq_script("ok ok ok lost");
    int64_t t0 = pgs_clock_now_us();
    fx_run(fx, 1, 5000);
    int64_t took = pgs_clock_now_us() - t0;

    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->fate[0], W_APPLIED);
    assert_int_equal(fx->attempts[0], 0);
    /* failed, stalled, stalled, then connected */
    assert_int_equal(harness_pq_connects_started(), 4);
    assert_true(took >= 2 * 300000);
    assert_int_equal(fx->pool->conns[0].connect_failures, 0);
    assert_int_equal(fx->pool->conns[0].state, C_IDLE);
}

/* A reconnect that reaches another database than the one of the rewind
 * check (a promoted standby: same system, a new timeline) takes no
 * transaction there: the commands that were in flight, and those queued,
 * stay unsettled (nothing is applied out of order on a database that may
 * have lost their predecessors), no resume floor is recorded from then on,
 * and the pool names the other database for the worker to start again. A
 * reconnect to the same database goes on as before. */
static void test_reconnect_to_another_database_takes_no_work(void **state)
{
    fx_t *fx = *state;
    harness_pq_identity("7714/1");
    fx_pool(fx);
    pgs_pool_set_identity(fx->pool, "7714/1");
    assert_int_equal(harness_pq_identity_asked(), 1); /* the blocking first connect */
    assert_null(pgs_pool_identity_changed(fx->pool));
    fx_works(fx, 3);
    /* BEGIN, setup, PREPARE, command 0, then the connection breaks */
    harness_pq_script("ok ok ok ok lost");
    harness_pq_identity("7714/2");
    int64_t deadline = pgs_clock_now_us() + 1500000;
    while (pgs_clock_now_us() < deadline)
        fx_step(fx);
    assert_int_equal(fx->finished, 0);
    assert_int_equal(fx->ndead, 0);
    assert_true(harness_pq_identity_asked() >= 2);
    assert_non_null(pgs_pool_identity_changed(fx->pool));
    assert_string_equal(pgs_pool_identity_changed(fx->pool), "7714/2");
    assert_string_equal(fx->pool->identity, "");    /* no floors from here */
    assert_int_equal(harness_pq_count("BEGIN"), 1); /* none on the other database */
    assert_int_not_equal(fx->pool->conns[0].state, C_IDLE);

    /* the worker's new rewind check names the database: work goes on */
    pgs_pool_set_identity(fx->pool, "7714/2");
    assert_null(pgs_pool_identity_changed(fx->pool));
    fx_run(fx, 3, 5000);
    assert_int_equal(fx->ndead, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->fate[i], W_APPLIED);
}

/* A multi-row statement fails with a permanent error: its commands go again
 * one statement each, and only the row at fault is dead-lettered. */
static void test_multi_row_failure_falls_back_to_one_by_one(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "apply.multi_row_min", "2");
    fx_pool(fx);
    fx_works(fx, 3);
    /* BEGIN, setup, PREPARE multi, multi fails; ROLLBACK; then one by one:
     * BEGIN, setup, PREPARE single, first ok, second fails; ROLLBACK */
    harness_pq_script("ok ok ok err=23514 ok ok ok ok ok err=23514");
    fx_run(fx, 3, 2000);

    assert_int_equal(harness_pq_count("EXEC pgs_b"), 1);
    assert_int_equal(fx->ndead, 1);
    int dead = -1;
    for (int i = 0; i < 3; i++) {
        if (fx->fate[i] == W_DEAD)
            dead = i;
        else
            assert_int_equal(fx->fate[i], W_APPLIED);
    }
    assert_true(dead >= 0);
    assert_string_equal(fx->dead_code[dead], "23514");
    assert_int_equal(fx->applied_calls, 1);
    assert_int_equal(fx->applied_n[0], 2);
    /* the multi-row statement was tried once; after it only singles: all
     * three (the third aborted), then the two not at fault */
    assert_int_equal(harness_pq_count("EXEC pgs_s"), 3 + 2);
}

/* A reused command id (PS002) in a multi-row statement: the commands go
 * again one by one, and the reusing one is dead-lettered with the pgscribe
 * code IDEMPOTENCY_KEY_REUSED, not the SQLSTATE. */
static void test_reused_id_dead_letters_with_its_code(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "apply.multi_row_min", "2");
    fx_pool(fx);
    fx_works(fx, 3);
    harness_pq_script("ok ok ok err=PS002 ok ok ok ok ok err=PS002");
    fx_run(fx, 3, 2000);

    assert_int_equal(fx->ndead, 1);
    int dead = -1;
    for (int i = 0; i < 3; i++) {
        if (fx->fate[i] == W_DEAD)
            dead = i;
        else
            assert_int_equal(fx->fate[i], W_APPLIED);
    }
    assert_true(dead >= 0);
    assert_string_equal(fx->dead_code[dead], "IDEMPOTENCY_KEY_REUSED");
    assert_int_equal(fx->dead_err[dead], PGS_E_IDEMPOTENCY_KEY_REUSED);
    assert_int_equal(fx->attempts[dead], 1);
    assert_non_null(strstr(fx->dead_msg[dead], "other content"));
    assert_int_equal(fx->applied_n[0], 2);
}

/* A deferred constraint fails at COMMIT: the commands go again each in a
 * transaction of its own; the one that fails alone is dead-lettered. */
static void test_commit_failure_sends_each_alone(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 2);
    /* BEGIN, setup, PREPARE, two commands, COMMIT fails; ROLLBACK; one alone
     * commits; the other alone fails at COMMIT */
    harness_pq_script("ok ok ok ok ok err=23503 ok ok ok ok ok ok ok ok err=23503");
    fx_run(fx, 2, 2000);

    assert_int_equal(fx->ndead, 1);
    assert_int_equal(fx->applied_calls, 1);
    assert_int_equal(fx->applied_n[0], 1);
    assert_int_equal(harness_pq_count("BEGIN"), 3);
    for (int i = 0; i < 2; i++) {
        if (fx->fate[i] == W_DEAD)
            assert_string_equal(fx->dead_code[i], "23503");
    }
}

/* No connection can be opened: the pool says so instead of starting. */
static void test_no_connection_fails_pool_creation(void **state)
{
    fx_t *fx = *state;
    harness_pq_fail_connects(1);
    pgs_pool_settings_t set = {.name = "commands",
                               .topic = "t",
                               .conninfo = "host=harness",
                               .schema = "clinic",
                               .size = 1,
                               .max_batch = 10,
                               .lanes = fx->lanes,
                               .cfg = fx->cfg};
    char err[256] = "";
    assert_null(pgs_pool_new(&set, &fx_ops, fx, err, sizeof(err)));
    assert_non_null(strstr(err, "no database connection"));
}

/* The lanes are the first wall; should they ever hand the pool one batch of
 * two clinics (here: a command of c2 queued in c1's group, as a lane bug
 * would), the transaction builder refuses to send it and the command of the
 * other clinic runs in a transaction of its own clinic. */
/* Queues one UPDATE of patients setting the one column extra_<col>: each
 * column is a statement shape of its own. */
static void fx_update_work(fx_t *fx, int col)
{
    int k = fx->nworks++;
    snprintf(fx->ids[k], sizeof(fx->ids[k]), "0b3c0f4e-0000-4000-8000-%012d", k);
    pgs_command_t *c = pgs_command_new();
    c->command_id = fx->ids[k];
    c->clinic_id = "c1";
    c->actor = "svc-test";
    c->entity = "patients";
    c->op = PGS_OP_UPDATE;
    c->key = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
    c->data = pgs_arena_alloc(c->arena, sizeof(pgs_field_t));
    c->key[0] = (pgs_field_t){.name = "id", .value = {.type = PGS_VAL_STRING}};
    c->key[0].value.u.s.ptr = fx->ids[k];
    c->key[0].value.u.s.len = strlen(fx->ids[k]);
    c->key_cnt = 1;
    static const char *const names[] = {"extra_0", "extra_1", "extra_2", "extra_3"};
    c->data[0] = (pgs_field_t){.name = names[col], .value = {.type = PGS_VAL_STRING}};
    c->data[0].value.u.s.ptr = "v";
    c->data[0].value.u.s.len = 1;
    c->data_cnt = 1;
    pgs_work_t *wk = calloc(1, sizeof(*wk));
    wk->cmd = c;
    wk->part = &fx->part;
    wk->offset = k;
    char err[256];
    assert_int_equal(pgs_catalog_validate(fx->cat, c, &wk->ent, err, sizeof(err)), PGS_OK);
    assert_int_equal(pgs_sqlgen_shape_of(wk->ent, c, &wk->shape), 0);
    wk->in_lane = 1;
    pgs_lanes_push(fx->lanes, &wk->lane, "c1", fx->ids[k], strlen(fx->ids[k]));
}

/* The registry keeps apply.max_statements shapes: with 4, the four
 * single-column UPDATEs (one multi-row statement serves every column set of
 * an UPDATE) make five statements, and the least recently used, the first
 * shape's, goes; the connection deallocates it before its next BEGIN. The
 * first shape used again is prepared anew under a fresh name, and evicts the
 * next one, which the connection drops in turn. */
static void test_evicted_statement_deallocated_and_prepared_again(void **state)
{
    fx_t *fx = *state;
    fx_set(fx, "apply.max_statements", "4");
    pgs_pool_settings_t set = {
        .name = "commands",
        .topic = "clinic.commands",
        .conninfo = "host=harness",
        .schema = pgs_catalog_schema(fx->cat),
        .size = 1,
        .max_batch = 1,
        .lanes = fx->lanes,
        .cfg = fx->cfg,
    };
    char err[256];
    fx->pool = pgs_pool_new(&set, &fx_ops, fx, err, sizeof(err));
    assert_non_null(fx->pool);
    for (int col = 0; col < 4; col++)
        fx_update_work(fx, col);
    fx_run(fx, 4, 2000);
    const char *log = harness_pq_log();
    /* the multi-row statement (pgs_b1, shared by every partial UPDATE) is
     * registered first and stays the most recent; the single-command ones
     * (each column set's own) are registered only because each batch of one
     * goes alone, and the oldest of them is the one evicted */
    assert_non_null(strstr(log, "PREPARE pgs_s2\nEXEC pgs_s2\n"));
    assert_non_null(strstr(log, "DEALLOCATE pgs_s2\nBEGIN\n"));
    assert_non_null(strstr(log, "PREPARE pgs_s5\nEXEC pgs_s5\n"));
    assert_null(strstr(log, "DEALLOCATE pgs_b"));        /* never prepared */
    assert_int_equal(harness_pq_count("DEALLOCATE"), 1); /* pgs_s3, s4, s5 still held */
    assert_int_equal(pgs_statements_count(fx->pool->stmts), 4);

    fx_update_work(fx, 0);
    fx_run(fx, 5, 2000);
    log = harness_pq_log();
    assert_non_null(strstr(log, "DEALLOCATE pgs_s3\nBEGIN\n"));
    assert_non_null(strstr(log, "PREPARE pgs_s6\nEXEC pgs_s6\n"));
    assert_int_equal(harness_pq_count("PREPARE pgs_s2"), 1); /* that name is never reused */
    assert_int_equal(harness_pq_count("DEALLOCATE"), 2);
    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->applied_calls, 5);
    assert_int_equal(pgs_statements_count(fx->pool->stmts), 4);
    assert_int_equal(pgs_statements_evicted(fx->pool->stmts), 2);
}

static void test_mixed_clinic_batch_refused(void **state)
{
    fx_t *fx = *state;
    fx_pool(fx);
    fx_works(fx, 3);
    pgs_lane_item_t *items[4];
    /* the builder itself: a mixed batch sends nothing */
    size_t n = pgs_lanes_take(fx->lanes, items, 4);
    assert_int_equal(n, 3);
    pgs_work_t *works[3] = {(pgs_work_t *)items[0], (pgs_work_t *)items[1], (pgs_work_t *)items[2]};
    works[1]->cmd->clinic_id = "c2";
    assert_int_equal(pgs_txn_one_clinic(works, 3), 1);
    for (int i = 0; i < 3; i++)
        pgs_lanes_retry(fx->lanes, &works[i]->lane);

    /* and the pool, given that batch by the lanes, keeps the clinics apart */
    fx_run(fx, 3, 2000);
    assert_int_equal(fx->ndead, 0);
    assert_int_equal(fx->applied_calls, 2); /* c1's two, then c2's one */
    assert_int_equal(fx->applied_n[0] + fx->applied_n[1], 3);
    assert_int_equal(harness_pq_count("BEGIN"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_row_message_is_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_id_dead_letters_with_its_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_error_dead_letters_only_the_culprit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_connection_mid_commit_resends_in_doubt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retryable_error_backs_off_and_applies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retryable_error_out_of_attempts_dead_letters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retryable_error_past_count_within_budget_retries,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryable_error_past_budget_dead_letters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_takes_several_polls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_failure_and_timeout_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_to_another_database_takes_no_work, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_multi_row_failure_falls_back_to_one_by_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_sends_each_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_clinic_batch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evicted_statement_deallocated_and_prepared_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_connection_fails_pool_creation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
