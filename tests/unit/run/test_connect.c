/* Unit tests: the session settings every pool connection carries in its
 * options (idle_in_transaction_session_timeout, plan_cache_mode), ahead of
 * the user's own options so that a setting of theirs wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "run/pool_internal.h"

static const char *param(const pgs_conn_params_t *p, const char *key)
{
    for (int i = 0; p->keys[i]; i++) {
        if (strcmp(p->keys[i], key) == 0)
            return p->vals[i];
    }
    return NULL;
}

static pgs_config_t *config_with(const char *name, const char *value)
{
    pgs_config_t *cfg = pgs_config_new();
    char err[256];
    if (name)
        assert_int_equal(pgs_config_set(cfg, name, value, err, sizeof(err)), 0);
    return cfg;
}

static void test_defaults_carry_generic_plans(void **state)
{
    (void)state;
    unsetenv("PGOPTIONS");
    pgs_config_t *cfg = config_with(NULL, NULL);
    pgs_conn_params_t p;
    pgs_connect_params_init(&p, "host=/tmp dbname=clinic", cfg);
    const char *opts = param(&p, "options");
    assert_non_null(opts);
    assert_non_null(strstr(opts, "-c idle_in_transaction_session_timeout=60000"));
    assert_non_null(strstr(opts, "-c plan_cache_mode=force_generic_plan"));
    /* options come after the conninfo, which libpq expands in place */
    int at_dbname = -1, at_options = -1;
    for (int i = 0; p.keys[i]; i++) {
        if (strcmp(p.keys[i], "dbname") == 0)
            at_dbname = i;
        if (strcmp(p.keys[i], "options") == 0)
            at_options = i;
    }
    assert_true(at_dbname >= 0 && at_options > at_dbname);
    pgs_connect_params_free(&p);
    pgs_config_free(cfg);
}

static void test_generic_plans_off(void **state)
{
    (void)state;
    unsetenv("PGOPTIONS");
    pgs_config_t *cfg = config_with("pg.generic_plans", "false");
    pgs_conn_params_t p;
    pgs_connect_params_init(&p, "host=/tmp dbname=clinic", cfg);
    const char *opts = param(&p, "options");
    assert_non_null(opts);
    assert_null(strstr(opts, "plan_cache_mode"));
    pgs_connect_params_free(&p);
    pgs_config_free(cfg);
    /* neither setting: no options keyword at all, the server's settings hold */
    cfg = config_with("pg.generic_plans", "false");
    char err[256];
    assert_int_equal(
        pgs_config_set(cfg, "pg.idle_in_transaction_timeout_ms", "0", err, sizeof(err)), 0);
    pgs_connect_params_init(&p, "host=/tmp dbname=clinic", cfg);
    assert_null(param(&p, "options"));
    pgs_connect_params_free(&p);
    pgs_config_free(cfg);
}

static void test_user_options_come_last(void **state)
{
    (void)state;
    unsetenv("PGOPTIONS");
    pgs_config_t *cfg = config_with(NULL, NULL);
    pgs_conn_params_t p;
    pgs_connect_params_init(&p, "host=/tmp options='-c plan_cache_mode=auto'", cfg);
    const char *opts = param(&p, "options");
    assert_non_null(opts);
    const char *ours = strstr(opts, "plan_cache_mode=force_generic_plan");
    const char *theirs = strstr(opts, "plan_cache_mode=auto");
    assert_non_null(ours);
    assert_non_null(theirs);
    assert_true(theirs > ours);
    pgs_connect_params_free(&p);
    /* PGOPTIONS stands in for the conninfo's options */
    setenv("PGOPTIONS", "-c work_mem=8MB", 1);
    pgs_connect_params_init(&p, "host=/tmp", cfg);
    opts = param(&p, "options");
    assert_non_null(opts);
    assert_true(strstr(opts, "work_mem=8MB") > strstr(opts, "force_generic_plan"));
    pgs_connect_params_free(&p);
    unsetenv("PGOPTIONS");
    pgs_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_carry_generic_plans),
        cmocka_unit_test(test_generic_plans_off),
        cmocka_unit_test(test_user_options_come_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
