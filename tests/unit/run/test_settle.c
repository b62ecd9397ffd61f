/* Unit tests: what the apply pool reports of each transaction through its
 * settled callback (the tracer's transaction spans), against a scripted
 * libpq (harness_pq.c): each work's `fresh` on a commit, the SQLSTATE and a
 * PHI-free message on a failure, and the retry's code and backoff. */
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
#include "run/worker.h"

#define MAX_WORKS 8

typedef struct {
    pgs_config_t *cfg;
    pgs_catalog_t *cat;
    pgs_lanes_t *lanes;
    pgs_pool_t *pool;
    int epfd;
    pgs_partition_t part;
    char ids[MAX_WORKS][37];
    int finished;
    /* what the settled callback saw, call by call */
    int settled;
    int settled_n[8];
    char settled_code[8][16];
    char settled_msg[8][256];
    int fresh[MAX_WORKS]; /* at its commit, by offset */
    char retry_code[16];
    int64_t retry_delay_us;
} fx_t;

static void done(fx_t *fx, pgs_work_t *wk)
{
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
    (void)fresh;
    (void)took_us;
    (void)clinic_id;
    for (int i = 0; i < n; i++)
        done(opaque, works[i]);
}

static void fx_retried(void *opaque, pgs_work_t *wk, const char *code, int64_t delay_us)
{
    fx_t *fx = opaque;
    (void)wk;
    snprintf(fx->retry_code, sizeof(fx->retry_code), "%s", code);
    fx->retry_delay_us = delay_us;
}

static void fx_dead_letter(void *opaque, pgs_work_t *wk, pgs_err_t err, const char *code,
                           const char *msg)
{
    (void)err;
    (void)code;
    (void)msg;
    done(opaque, wk);
}

static void fx_settled(void *opaque, pgs_work_t *const *works, int n, int64_t took_us,
                       const char *code, const char *msg)
{
    fx_t *fx = opaque;
    assert_true(fx->settled < 8);
    assert_true(took_us >= 0);
    fx->settled_n[fx->settled] = n;
    snprintf(fx->settled_code[fx->settled], 16, "%s", code ? code : "-");
    snprintf(fx->settled_msg[fx->settled], 256, "%s", msg ? msg : "");
    for (int i = 0; i < n && !code; i++)
        fx->fresh[works[i]->offset] = works[i]->fresh;
    fx->settled++;
}

static const pgs_pool_ops_t fx_ops = {
    .watch = fx_watch,
    .applied = fx_applied,
    .retried = fx_retried,
    .dead_letter = fx_dead_letter,
    .settled = fx_settled,
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
    fx_set(fx, "apply.multi_row_min", "1000");
    fx_set(fx, "retry.backoff_initial_ms", "5");
    fx_set(fx, "retry.backoff_max_ms", "10");
    fx->cat = pgs_catalog_new("clinic");
    pgs_entity_t *e = pgs_catalog_add_entity(fx->cat, "patients");
    pgs_catalog_entity_add_column(e, "id", "uuid", 2950, 1, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "clinic_id", "text", 25, 0, 1, 0, 0);
    pgs_catalog_entity_add_column(e, "given_name", "text", 25, 0, 0, 0, 1);
    fx->lanes = pgs_lanes_new();
    fx->epfd = epoll_create1(EPOLL_CLOEXEC);
    fx->part.partition = 1;
    pgs_pool_settings_t set = {
        .name = "commands",
        .topic = "clinic.commands",
        .conninfo = "host=harness",
        .schema = "clinic",
        .size = 1,
        .max_batch = 10,
        .lanes = fx->lanes,
        .cfg = fx->cfg,
    };
    char err[256];
    fx->pool = pgs_pool_new(&set, &fx_ops, fx, err, sizeof(err));
    assert_non_null(fx->pool);
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

/* @p n INSERTs of patients, each of its own key, clinic c1; work i has offset i */
static void fx_works(fx_t *fx, int n)
{
    for (int k = 0; k < n; k++) {
        snprintf(fx->ids[k], sizeof(fx->ids[k]), "0b3c0f4e-0000-4000-8000-%012d", k);
        pgs_command_t *c = pgs_command_new();
        c->command_id = fx->ids[k];
        c->clinic_id = "c1";
        c->actor = "svc-test";
        c->entity = "patients";
        c->op = PGS_OP_INSERT;
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
        wk->fresh = -1;
        char err[256];
        assert_int_equal(pgs_catalog_validate(fx->cat, c, &wk->ent, err, sizeof(err)), PGS_OK);
        assert_int_equal(pgs_sqlgen_shape_of(wk->ent, c, &wk->shape), 0);
        wk->in_lane = 1;
        pgs_lanes_push(fx->lanes, &wk->lane, "c1", fx->ids[k], strlen(fx->ids[k]));
    }
}

static void fx_run(fx_t *fx, int finished, int timeout_ms)
{
    int64_t deadline = pgs_clock_now_us() + (int64_t)timeout_ms * 1000;
    while (fx->finished < finished && pgs_clock_now_us() < deadline) {
        pgs_pool_dispatch(fx->pool);
        struct epoll_event evs[8];
        int n = epoll_wait(fx->epfd, evs, 8, 5);
        for (int i = 0; i < n; i++)
            pgs_pool_on_event(fx->pool, evs[i].data.ptr, evs[i].events);
        pgs_pool_tick(fx->pool);
    }
    assert_int_equal(fx->finished, finished);
}

/* A commit of three, the second a duplicate: settled once, before the
 * outcome, each work's fresh set. */
static void test_commit_sets_fresh(void **state)
{
    fx_t *fx = *state;
    fx_works(fx, 3);
    /* BEGIN, setup, PREPARE, three commands, COMMIT */
    harness_pq_script("ok ok ok ok row=0 ok ok");
    fx_run(fx, 3, 2000);
    assert_int_equal(fx->settled, 1);
    assert_int_equal(fx->settled_n[0], 3);
    assert_string_equal(fx->settled_code[0], "-");
    assert_int_equal(fx->fresh[0], 1);
    assert_int_equal(fx->fresh[1], 0);
    assert_int_equal(fx->fresh[2], 1);
}

/* A permanent failure: the failed transaction is settled with its SQLSTATE
 * and a message without the value, then the others' commit. */
static void test_failure_settles_with_code(void **state)
{
    fx_t *fx = *state;
    fx_works(fx, 3);
    harness_pq_script("ok ok ok ok err=23514:quantity_limit");
    fx_run(fx, 3, 2000);
    assert_int_equal(fx->settled, 2);
    assert_int_equal(fx->settled_n[0], 3);
    assert_string_equal(fx->settled_code[0], "23514");
    assert_non_null(strstr(fx->settled_msg[0], "quantity_limit"));
    assert_null(strstr(fx->settled_msg[0], "Secretname"));
    assert_int_equal(fx->settled_n[1], 2);
    assert_string_equal(fx->settled_code[1], "-");
}

/* A transient failure: settled with its SQLSTATE; the retry reports the
 * same code and its backoff. */
static void test_retry_reports_code_and_delay(void **state)
{
    fx_t *fx = *state;
    fx_works(fx, 1);
    harness_pq_script("ok ok ok err=40001");
    fx_run(fx, 1, 3000);
    assert_string_equal(fx->settled_code[0], "40001");
    assert_string_equal(fx->retry_code, "40001");
    assert_true(fx->retry_delay_us >= 0 && fx->retry_delay_us <= 10000);
    assert_string_equal(fx->settled_code[fx->settled - 1], "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_sets_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_settles_with_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_reports_code_and_delay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
