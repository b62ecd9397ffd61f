/* Unit tests for the schema registry client against a scripted local HTTP
 * server (libmicrohttpd): look-ups, the cache, 404, outages and the
 * backoff, basic auth, registration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "common/schemareg.h"

/* "user:secret" */
#define AUTH "Basic dXNlcjpzZWNyZXQ="

static struct MHD_Daemon *daemon_;
static int port;
static int requests;      /* every request the server answered */
static int fail_status;   /* when set, every request gets it */
static int bad_auth;      /* requests whose Authorization was not AUTH */
static char posted[4096]; /* the last POST body */

typedef struct {
    char body[4096];
    size_t len;
} upload_t;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/vnd.schemaregistry.v1+json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    if (!*con_cls) {
        *con_cls = calloc(1, sizeof(upload_t));
        return MHD_YES;
    }
    upload_t *up = *con_cls;
    if (*data_size) {
        size_t n = *data_size < sizeof(up->body) - 1 - up->len ? *data_size
                                                               : sizeof(up->body) - 1 - up->len;
        memcpy(up->body + up->len, data, n);
        up->len += n;
        *data_size = 0;
        return MHD_YES;
    }
    requests++;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strcmp(auth, AUTH) != 0) {
        bad_auth++;
        return reply(c, 401, "{\"error_code\":401,\"message\":\"Unauthorized\"}");
    }
    if (fail_status)
        return reply(c, (unsigned)fail_status, "{\"error_code\":50001,\"message\":\"boom\"}");
    if (strcmp(method, "GET") == 0 && strcmp(url, "/ccompat/schemas/ids/5") == 0)
        return reply(c, 200, "{\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}");
    if (strcmp(method, "GET") == 0 && strcmp(url, "/ccompat/schemas/ids/6") == 0)
        return reply(c, 200, "{\"schema\":\"syntax = 'proto3';\",\"schemaType\":\"PROTOBUF\"}");
    if (strcmp(method, "GET") == 0 && strcmp(url, "/ccompat/schemas/ids/8") == 0)
        return reply(c, 200, "<html>a proxy's page</html>");
    if (strcmp(method, "POST") == 0 &&
        strcmp(url, "/ccompat/subjects/clinic.commands-value/versions") == 0) {
        snprintf(posted, sizeof(posted), "%.*s", (int)up->len, up->body);
        return reply(c, 200, "{\"id\":42}");
    }
    if (strcmp(method, "POST") == 0)
        return reply(c, 409, "{\"error_code\":409,\"message\":\"incompatible schema\"}");
    return reply(c, 404, "{\"error_code\":40403,\"message\":\"Schema not found\"}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static int setup(void **state)
{
    (void)state;
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
                               MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (!daemon_)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = info->port;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

static pgs_schemareg_t *client(const char *password)
{
    char url[128], err[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ccompat/", port);
    pgs_schemareg_opts_t o = {.url = url,
                              .user = "user",
                              .password = password,
                              .tls_verify = 1,
                              .timeout_ms = 2000,
                              .backoff_min_ms = 50,
                              .backoff_max_ms = 200};
    pgs_schemareg_t *r = pgs_schemareg_new(&o, err, sizeof(err));
    assert_non_null(r);
    return r;
}

/* A found id is asked once: the second look-up is the cache's. */
static void test_get_cached(void **state)
{
    (void)state;
    pgs_schemareg_t *r = client("secret");
    const char *schema = NULL;
    char err[256] = "";
    int before = requests;
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_OK);
    assert_string_equal(schema, "{\"type\":\"string\"}");
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_OK);
    assert_string_equal(schema, "{\"type\":\"string\"}");
    assert_int_equal(requests - before, 1);
    assert_int_equal(pgs_schemareg_fetches(r), 1);
    assert_false(pgs_schemareg_down(r));
    pgs_schemareg_free(r);
}

/* 404 is an answer about the id (not found), not an outage; a schema of
 * another type is not found either; garbage is invalid. */
static void test_get_not_found(void **state)
{
    (void)state;
    pgs_schemareg_t *r = client("secret");
    const char *schema = NULL;
    char err[256] = "";
    assert_int_equal(pgs_schemareg_get(r, 999, &schema, err, sizeof(err)), PGS_SCHEMAREG_NOT_FOUND);
    assert_non_null(strstr(err, "999"));
    assert_false(pgs_schemareg_down(r));
    assert_int_equal(pgs_schemareg_get(r, 6, &schema, err, sizeof(err)), PGS_SCHEMAREG_NOT_FOUND);
    assert_non_null(strstr(err, "PROTOBUF"));
    assert_int_equal(pgs_schemareg_get(r, 8, &schema, err, sizeof(err)), PGS_SCHEMAREG_INVALID);
    pgs_schemareg_free(r);
}

/* A 5xx is an outage: unavailable, then unavailable without a request until
 * the backoff passed; the next answer clears it. */
static void test_outage_backoff(void **state)
{
    (void)state;
    pgs_schemareg_t *r = client("secret");
    const char *schema = NULL;
    char err[256] = "";
    fail_status = 503;
    int before = requests;
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_UNAVAILABLE);
    assert_non_null(strstr(err, "HTTP 503"));
    assert_true(pgs_schemareg_down(r));
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_UNAVAILABLE);
    assert_non_null(strstr(err, "next attempt in"));
    assert_int_equal(requests - before, 1); /* the second never reached the server */
    fail_status = 0;
    usleep(60 * 1000);
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_OK);
    assert_false(pgs_schemareg_down(r));
    assert_int_equal(pgs_schemareg_failures(r), 1);
    pgs_schemareg_free(r);
}

/* Nothing listening: unavailable, never not-found. */
static void test_unreachable(void **state)
{
    (void)state;
    char err[256] = "";
    pgs_schemareg_opts_t o = {.url = "http://127.0.0.1:1/", .timeout_ms = 500};
    pgs_schemareg_t *r = pgs_schemareg_new(&o, err, sizeof(err));
    assert_non_null(r);
    const char *schema = NULL;
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_UNAVAILABLE);
    assert_true(pgs_schemareg_down(r));
    pgs_schemareg_free(r);
    o.url = "ftp://127.0.0.1/";
    assert_null(pgs_schemareg_new(&o, err, sizeof(err)));
}

/* Wrong credentials: 401, an outage of ours (the id is not judged), and the
 * message names no password. */
static void test_bad_auth(void **state)
{
    (void)state;
    pgs_schemareg_t *r = client("wrong-password");
    const char *schema = NULL;
    char err[256] = "";
    int before = bad_auth;
    assert_int_equal(pgs_schemareg_get(r, 5, &schema, err, sizeof(err)), PGS_SCHEMAREG_UNAVAILABLE);
    assert_int_equal(bad_auth - before, 1);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_null(strstr(err, "wrong-password"));
    pgs_schemareg_free(r);
}

/* Registration posts the schema as a JSON string and returns the id; the
 * registry's refusal is reported with its message. */
static void test_register(void **state)
{
    (void)state;
    pgs_schemareg_t *r = client("secret");
    char err[256] = "";
    int32_t id = 0;
    assert_int_equal(pgs_schemareg_register(r, "clinic.commands-value", "{\"type\":\"long\"}", &id,
                                            err, sizeof(err)),
                     PGS_SCHEMAREG_OK);
    assert_int_equal(id, 42);
    assert_non_null(strstr(posted, "\"schema\":\"{\\\"type\\\":\\\"long\\\"}\""));
    assert_int_equal(
        pgs_schemareg_register(r, "other-value", "{\"type\":\"long\"}", &id, err, sizeof(err)),
        PGS_SCHEMAREG_INVALID);
    assert_non_null(strstr(err, "HTTP 409: incompatible schema"));
    pgs_schemareg_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_cached),     cmocka_unit_test(test_get_not_found),
        cmocka_unit_test(test_outage_backoff), cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_bad_auth),       cmocka_unit_test(test_register),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
