/* Unit tests: librdkafka's unreachable errors become pgscribe's own lines at
 * a bounded rate, the kafka readiness follows them, and a contact ends them;
 * a TLS or authentication failure before the first contact refuses the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509_vfy.h>

#include "common/log.h"
#include "run/reach.h"
#include "run/worker.h"

static pgs_worker_t wk;
static rd_kafka_t *rk;
static char out[65536];
static int capture_fd = -1, saved_fd = -1;

static void capture_start(void)
{
    fflush(stderr);
    char path[] = "/tmp/pgs_test_reach_XXXXXX";
    capture_fd = mkstemp(path);
    assert_true(capture_fd >= 0);
    unlink(path);
    saved_fd = dup(2);
    dup2(capture_fd, 2);
}

static int capture_end(const char *needle)
{
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    ssize_t n = pread(capture_fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(capture_fd);
    int count = 0;
    for (const char *p = out; (p = strstr(p, needle)) != NULL; p++)
        count++;
    return count;
}

static int setup(void **state)
{
    (void)state;
    memset(&wk, 0, sizeof(wk));
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", "10.0.0.9:9092", err, sizeof(err)),
        RD_KAFKA_CONF_OK);
    pgs_reach_conf(&wk, conf);
    /* the handle only names the lines: it is never polled */
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_destroy(rk);
    return 0;
}

static void test_all_brokers_down_is_one_warn_line_then_back(void **state)
{
    (void)state;
    assert_string_equal(wk.reach.brokers, "10.0.0.9:9092");
    assert_true(pgs_reach_kafka_ok(&wk));
    capture_start();
    for (int i = 0; i < 5; i++)
        pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", &wk);
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__TRANSPORT, "10.0.0.9:9092/1: Connect failed", &wk);
    assert_int_equal(capture_end("msg=\"kafka unreachable\""), 2);
    assert_non_null(strstr(out, "level=warn"));
    assert_non_null(strstr(out, "cause=all_brokers_down brokers=10.0.0.9:9092 "));
    assert_non_null(strstr(out, "cause=transport brokers=10.0.0.9:9092 "));
    assert_non_null(strstr(out, " suppressed=0\n"));
    assert_false(pgs_reach_kafka_ok(&wk));

    capture_start();
    pgs_reach_contact(&wk);
    pgs_reach_contact(&wk); /* nothing more to say */
    assert_int_equal(capture_end("msg=\"kafka reachable again\""), 1);
    assert_non_null(strstr(out, "level=info"));
    assert_true(pgs_reach_kafka_ok(&wk));

    /* a new outage is told at once */
    capture_start();
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", &wk);
    assert_int_equal(capture_end("msg=\"kafka unreachable\""), 1);
    pgs_reach_contact(&wk);
}

static void test_transport_alone_keeps_readiness(void **state)
{
    (void)state;
    capture_start();
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__RESOLVE, "kafka-9: Name or service not known", &wk);
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, "not allowed", &wk);
    capture_end("msg=");
    assert_non_null(strstr(out, "cause=resolve"));
    assert_non_null(strstr(out, "msg=\"kafka error\" code=GROUP_AUTHORIZATION_FAILED"));
    assert_true(pgs_reach_kafka_ok(&wk));
    pgs_reach_contact(&wk);
}

static void reset_start(void)
{
    wk.reach.contacted = 0;
    wk.reach.start_refused = 0;
    wk.reach.refused_why[0] = '\0';
    wk.reach.cert_error = 0;
}

static void test_certificate_error_is_named_in_the_refusal(void **state)
{
    (void)state;
    reset_start();
    char errstr[256] = "";
    int ok = X509_V_OK;
    assert_int_equal(
        pgs_reach_cert_verify_cb(rk, "b", 1, &ok, 1, "", 0, errstr, sizeof(errstr), &wk), 1);
    int bad = X509_V_ERR_HOSTNAME_MISMATCH;
    assert_int_equal(
        pgs_reach_cert_verify_cb(rk, "b", 1, &bad, 0, "", 0, errstr, sizeof(errstr), &wk), 0);
    assert_non_null(strstr(errstr, "hostname mismatch"));
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__SSL,
                       "SSL handshake failed: certificate verify failed", &wk);
    const char *why = NULL;
    assert_true(pgs_reach_start_refused(&wk, &why));
    assert_non_null(strstr(why, "_SSL: certificate: hostname mismatch: SSL handshake failed"));
    pgs_reach_contact(&wk);
}

static void test_tls_failure_before_contact_refuses_start(void **state)
{
    (void)state;
    reset_start();
    const char *why = NULL;
    assert_false(pgs_reach_start_refused(&wk, &why));
    /* an outage before any contact is waited out, not a refusal */
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__TRANSPORT, "Connect failed", &wk);
    assert_false(pgs_reach_start_refused(&wk, &why));
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__SSL,
                       "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate "
                       "verify failed",
                       &wk);
    assert_true(pgs_reach_start_refused(&wk, &why));
    assert_non_null(why);
    assert_non_null(strstr(why, "_SSL: "));
    assert_non_null(strstr(why, "certificate verify failed"));
    /* the first reason is kept */
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL failed", &wk);
    assert_null(strstr(why, "SASL"));
    pgs_reach_contact(&wk);
}

static void test_authentication_failure_before_contact_refuses_start(void **state)
{
    (void)state;
    reset_start();
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL authentication failed", &wk);
    const char *why = NULL;
    assert_true(pgs_reach_start_refused(&wk, &why));
    assert_non_null(strstr(why, "_AUTHENTICATION: SASL authentication failed"));
    pgs_reach_contact(&wk);
}

static void test_tls_failure_after_contact_is_retried(void **state)
{
    (void)state;
    reset_start();
    pgs_reach_contact(&wk);
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__SSL, "SSL handshake failed", &wk);
    pgs_reach_error_cb(rk, RD_KAFKA_RESP_ERR__AUTHENTICATION, "SASL failed", &wk);
    assert_false(pgs_reach_start_refused(&wk, NULL));
    assert_true(pgs_reach_kafka_ok(&wk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_brokers_down_is_one_warn_line_then_back),
        cmocka_unit_test(test_transport_alone_keeps_readiness),
        cmocka_unit_test(test_tls_failure_before_contact_refuses_start),
        cmocka_unit_test(test_authentication_failure_before_contact_refuses_start),
        cmocka_unit_test(test_tls_failure_after_contact_is_retried),
        cmocka_unit_test(test_certificate_error_is_named_in_the_refusal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
