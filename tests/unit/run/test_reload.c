/* Unit tests: the catalog reload runs off the event loop; a slow load
 * neither blocks its start nor the loop's epoll, and hands its result over
 * through the eventfd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "run/reload.h"

typedef struct {
    int sleep_ms;
    int fail;
    int loads;
} slow_t;

/* A load as slow as catalog queries behind a lock or a slow server. */
static pgs_catalog_t *slow_load(void *arg, char *errstr, size_t errstr_size)
{
    slow_t *s = arg;
    struct timespec ts = {s->sleep_ms / 1000, (long)(s->sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    __atomic_add_fetch(&s->loads, 1, __ATOMIC_SEQ_CST);
    if (s->fail) {
        snprintf(errstr, errstr_size, "schema clinic: permission denied");
        return NULL;
    }
    pgs_catalog_t *cat = pgs_catalog_new("clinic");
    pgs_catalog_add_entity(cat, "patients");
    return cat;
}

/* The loop keeps turning while the load runs: each epoll_wait returns on
 * its timeout, and only once the load is done does the fd report ready. */
static void test_slow_reload_does_not_block_the_loop(void **state)
{
    (void)state;
    slow_t s = {.sleep_ms = 400};
    pgs_reload_t *r = pgs_reload_new(slow_load, &s);
    assert_non_null(r);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, pgs_reload_fd(r), &ev), 0);

    char err[256];
    int64_t t0 = pgs_clock_now_us();
    assert_int_equal(pgs_reload_start(r, err, sizeof(err)), 0);
    assert_true(pgs_clock_now_us() - t0 < 50000); /* returned at once */
    assert_true(pgs_reload_busy(r));
    /* a second SIGHUP meanwhile starts nothing */
    assert_int_equal(pgs_reload_start(r, err, sizeof(err)), 1);

    int turns = 0, ready = 0;
    int64_t longest = 0;
    pgs_catalog_t *cat = NULL;
    while (!ready && pgs_clock_now_us() - t0 < 3000000) {
        int64_t a = pgs_clock_now_us();
        struct epoll_event got;
        int n = epoll_wait(ep, &got, 1, 10);
        int64_t took = pgs_clock_now_us() - a;
        if (took > longest)
            longest = took;
        turns++;
        if (n == 1) {
            assert_ptr_equal(got.data.ptr, r);
            ready = pgs_reload_take(r, &cat, err, sizeof(err));
        } else {
            assert_int_equal(pgs_reload_take(r, &cat, err, sizeof(err)), 0);
        }
    }
    assert_true(ready);
    assert_true(pgs_clock_now_us() - t0 >= 400000);
    /* the loop turned all along, never held for the load's duration */
    assert_true(turns >= 20);
    assert_true(longest < 200000);
    assert_non_null(cat);
    assert_int_equal(pgs_catalog_entity_count(cat), 1);
    assert_false(pgs_reload_busy(r));
    assert_int_equal(s.loads, 1);
    pgs_catalog_free(cat);
    close(ep);
    pgs_reload_free(r);
}

/* A failed load says why, and the next SIGHUP can start another. */
static void test_failed_reload_reports_and_restarts(void **state)
{
    (void)state;
    slow_t s = {.sleep_ms = 20, .fail = 1};
    pgs_reload_t *r = pgs_reload_new(slow_load, &s);
    char err[256] = "";
    pgs_catalog_t *cat = (pgs_catalog_t *)&s;
    assert_int_equal(pgs_reload_start(r, err, sizeof(err)), 0);
    int64_t t0 = pgs_clock_now_us();
    int done = 0;
    while (!done && pgs_clock_now_us() - t0 < 2000000) {
        done = pgs_reload_take(r, &cat, err, sizeof(err));
        usleep(1000);
    }
    assert_true(done);
    assert_null(cat);
    assert_non_null(strstr(err, "permission denied"));
    s.fail = 0;
    assert_int_equal(pgs_reload_start(r, err, sizeof(err)), 0);
    /* freed while a load runs: waits for it and frees its catalog */
    pgs_reload_free(r);
    assert_int_equal(s.loads, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reload_does_not_block_the_loop),
        cmocka_unit_test(test_failed_reload_reports_and_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
