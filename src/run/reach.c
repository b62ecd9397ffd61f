/* Kafka reachability: librdkafka reports an unreachable cluster through its
 * error callback, often many times a second across the consumer and the
 * producer. pgscribe writes its own line per cause instead, naming the
 * brokers, at a bounded rate, and says so again when contact is back; the
 * kafka check of /readyz and systemd's READY follow the same state. */
#include "run/reach.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "run/worker.h"

#define REACH_LOG_INTERVAL_US 10000000LL

static const char *const cause_names[PGS_REACH__COUNT] = {"all_brokers_down", "transport",
                                                          "resolve"};

void pgs_reach_conf(pgs_worker_t *w, rd_kafka_conf_t *conf)
{
    size_t size = sizeof(w->reach.brokers);
    if (!w->reach.brokers[0] &&
        rd_kafka_conf_get(conf, "bootstrap.servers", w->reach.brokers, &size) != RD_KAFKA_CONF_OK)
        snprintf(w->reach.brokers, sizeof(w->reach.brokers), "-");
    rd_kafka_conf_set_error_cb(conf, pgs_reach_error_cb);
    /* a build without TLS refuses it: nothing to verify then */
    rd_kafka_conf_set_ssl_cert_verify_cb(conf, pgs_reach_cert_verify_cb);
}

int pgs_reach_cert_verify_cb(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                             int *x509_error, int depth, const char *buf, size_t size, char *errstr,
                             size_t errstr_size, void *opaque)
{
    (void)rk, (void)broker_name, (void)broker_id, (void)buf, (void)size;
    pgs_worker_t *w = opaque;
    if (*x509_error == X509_V_OK)
        return 1;
    w->reach.cert_error = *x509_error;
    snprintf(errstr, errstr_size, "%s (depth %d)", X509_verify_cert_error_string(*x509_error),
             depth);
    return 0;
}

static int cause_of(int err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return PGS_REACH_ALL_DOWN;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return PGS_REACH_TRANSPORT;
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return PGS_REACH_RESOLVE;
    default:
        return -1;
    }
}

/* TLS and authentication: a certificate or credential problem, not an outage */
static int is_refusal(int err)
{
    return err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION;
}

void pgs_reach_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pgs_worker_t *w = opaque;
    pgs_reach_t *r = &w->reach;
    int cause = cause_of(err);
    const char *name = rd_kafka_name(rk);
    if (is_refusal(err) && !r->contacted && !r->start_refused) {
        r->start_refused = 1;
        int cert = r->cert_error;
        snprintf(r->refused_why, sizeof(r->refused_why), "%s: %s%s%s%s", rd_kafka_err2name(err),
                 cert ? "certificate: " : "", cert ? X509_verify_cert_error_string(cert) : "",
                 cert ? ": " : "", reason ? reason : "");
    }
    if (cause < 0) {
        int fatal = err == RD_KAFKA_RESP_ERR__FATAL;
        const char *kv[] = {"code",   rd_kafka_err2name(err), "name", name,
                            "reason", reason ? reason : "",   NULL};
        pgs_log_kv(fatal ? PGS_LOG_ERROR : PGS_LOG_WARN, "kafka", kv, "kafka error");
        return;
    }
    int64_t now = pgs_clock_now_us(), suppressed = 0;
    if (cause == PGS_REACH_ALL_DOWN && !r->kafka_down) {
        r->kafka_down = 1;
        r->down_since_us = now;
    }
    r->kafka_trouble = 1;
    if (!pgs_lograte_allow(&r->rate[cause], now, REACH_LOG_INTERVAL_US, &suppressed))
        return;
    char sup[24];
    snprintf(sup, sizeof(sup), "%lld", (long long)suppressed);
    const char *kv[] = {"cause",  cause_names[cause],   "brokers",    r->brokers, "name", name,
                        "reason", reason ? reason : "", "suppressed", sup,        NULL};
    pgs_log_kv(PGS_LOG_WARN, "kafka", kv, "kafka unreachable");
}

static void contact_back(pgs_worker_t *w)
{
    pgs_reach_t *r = &w->reach;
    char down[32] = "0";
    if (r->kafka_down)
        snprintf(down, sizeof(down), "%.1f", (double)(pgs_clock_now_us() - r->down_since_us) / 1e6);
    const char *kv[] = {"brokers", r->brokers, "down_s", down, NULL};
    pgs_log_kv(PGS_LOG_INFO, "kafka", kv, "kafka reachable again");
    r->kafka_down = 0;
    r->kafka_trouble = 0;
    for (int i = 0; i < PGS_REACH__COUNT; i++)
        pgs_lograte_reset(&r->rate[i]);
}

void pgs_reach_contact(pgs_worker_t *w)
{
    w->reach.contacted = 1;
    if (w->reach.kafka_trouble)
        contact_back(w);
}

int pgs_reach_kafka_ok(const pgs_worker_t *w)
{
    return !w->reach.kafka_down;
}

int pgs_reach_start_refused(const pgs_worker_t *w, const char **why)
{
    if (!w->reach.start_refused)
        return 0;
    if (why)
        *why = w->reach.refused_why;
    return 1;
}
