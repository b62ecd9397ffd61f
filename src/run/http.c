/* HTTP endpoint (libmicrohttpd): /metrics in Prometheus' text format,
 * /livez and /readyz with the HTTP status as the answer (?verbose for
 * humans, as Kubernetes' own endpoints do), /status and /profile (the
 * statement profiles, profile.c) as JSON. The server runs
 * in the worker's one epoll loop (MHD_USE_EPOLL, no thread of its own), so a
 * handler sees the worker as it is between two loop turns, and /livez is
 * answered only while the loop turns. */
#include "run/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/promtext.h"
#include "common/sbuf.h"
#include "run/lag.h"
#include "run/lanes.h"
#include "run/pool.h"
#include "run/prom.h"
#include "run/reach.h"
#include "run/worker.h"

struct pgs_http_s {
    pgs_worker_t *w;
    struct MHD_Daemon *d;
    int port;
};

int pgs_http_parse_listen(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - listen - 1);
        listen++;
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= host_size)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

int pgs_http_assigned_partitions(const pgs_worker_t *w)
{
    int n = 0;
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++)
            n += st->parts[i] && st->parts[i]->assigned && !st->parts[i]->revoking;
    }
    return n;
}

int pgs_http_readiness(const pgs_worker_t *w, pgs_sbuf_t *sb)
{
    int ok = 1;
    int parts = pgs_http_assigned_partitions(w);
    ok &= parts > 0;
    if (sb)
        pgs_sbuf_printf(sb, "[%s]assigned: %d partition(s)\n", parts > 0 ? "+" : "-", parts);
    int kafka = pgs_reach_kafka_ok(w);
    ok &= kafka;
    if (sb)
        pgs_sbuf_printf(sb, "[%s]kafka: %s\n", kafka ? "+" : "-",
                        kafka ? "brokers reachable" : "all brokers down");
    /* messages waiting for the schema registry hold their partitions; shown,
     * not failed: no restart or rerouting helps, and a worker started during
     * a registry outage must still report ready to systemd */
    if (w->registry) {
        if (sb)
            pgs_sbuf_printf(sb, "[%s]schema registry: %zu message(s) waiting\n",
                            w->schema_held ? "-" : "+", w->schema_held);
    }
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        int conns = pgs_pool_connected(st->pool);
        const char *breaker = st->pool ? pgs_pool_breaker_state(st->pool) : "closed";
        int closed = strcmp(breaker, "open") != 0;
        ok &= conns > 0 && closed;
        if (!sb)
            continue;
        pgs_sbuf_printf(sb, "[%s]%s database: %d connection(s)\n", conns > 0 ? "+" : "-", st->name,
                        conns);
        pgs_sbuf_printf(sb, "[%s]%s breaker: %s\n", closed ? "+" : "-", st->name, breaker);
    }
    return ok;
}

/* Ready: partitions assigned, Kafka reachable, each pool connected, no
 * breaker open (pgs_http_readiness; systemd's READY=1 asks the same). */
static enum MHD_Result readyz(pgs_worker_t *w, struct MHD_Connection *conn, int verbose)
{
    pgs_sbuf_t sb = {0};
    int ok = pgs_http_readiness(w, &sb);
    pgs_sbuf_printf(&sb, "readyz check %s\n", ok ? "passed" : "failed");
    if (!verbose) {
        free(sb.buf);
        sb = (pgs_sbuf_t){0};
        pgs_sbuf_puts(&sb, ok ? "ok\n" : "not ready\n");
    }
    return answer(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", sb.buf,
                  sb.len);
}

static json_t *status_json(pgs_worker_t *w)
{
    json_t *root = json_object();
    json_object_set_new(root, "worker", json_string(w->worker_id));
    json_object_set_new(root, "version", json_string(PGS_VERSION));
    json_t *streams = json_array();
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        const pgs_stream_t *st = &w->streams[s];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(st->name));
        json_object_set_new(o, "topic", json_string(st->topic));
        json_t *parts = json_array();
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            const pgs_partition_t *p = st->parts[i];
            if (!p || !p->assigned)
                continue;
            json_t *po = json_object();
            json_object_set_new(po, "partition", json_integer(p->partition));
            json_object_set_new(po, "state",
                                json_string(p->revoking ? "revoking"
                                            : p->paused ? "paused"
                                                        : "running"));
            json_object_set_new(po, "outstanding", json_integer((json_int_t)p->outstanding));
            int64_t lag = pgs_lag_partition(w, st, p);
            json_object_set_new(po, "lag", lag >= 0 ? json_integer(lag) : json_null());
            json_array_append_new(parts, po);
        }
        json_object_set_new(o, "partitions", parts);
        json_t *pool = json_object();
        json_object_set_new(pool, "size", json_integer(st->pool ? pgs_pool_size(st->pool) : 0));
        json_object_set_new(pool, "connected", json_integer(pgs_pool_connected(st->pool)));
        json_object_set_new(pool, "in_flight",
                            json_integer(st->pool ? pgs_pool_busy(st->pool) : 0));
        json_object_set_new(pool, "in_flight_limit",
                            json_integer(st->pool ? pgs_pool_in_flight_limit(st->pool) : 0));
        json_object_set_new(pool, "breaker",
                            json_string(st->pool ? pgs_pool_breaker_state(st->pool) : "closed"));
        json_object_set_new(o, "pool", pool);
        json_t *lanes = json_object();
        json_object_set_new(lanes, "queued",
                            json_integer(st->lanes ? (json_int_t)pgs_lanes_queued(st->lanes) : 0));
        json_object_set_new(lanes, "ready",
                            json_integer(st->lanes ? (json_int_t)pgs_lanes_ready(st->lanes) : 0));
        json_object_set_new(
            lanes, "in_flight",
            json_integer(st->lanes ? (json_int_t)pgs_lanes_in_flight(st->lanes) : 0));
        json_object_set_new(o, "lanes", lanes);
        json_array_append_new(streams, o);
    }
    json_object_set_new(root, "streams", streams);
    json_t *errors = json_array();
    for (size_t i = 0;; i++) {
        char line[1100];
        if (pgs_log_recent(i, line, sizeof(line)) != 0)
            break;
        json_array_append_new(errors, json_string(line));
    }
    json_object_set_new(root, "last_errors", errors);
    return root;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    pgs_http_t *http = cls;
    pgs_worker_t *w = http->w;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup("GET only\n"), 9);
    int verbose = MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "verbose", 7, NULL,
                                                NULL) == MHD_YES;
    if (strcmp(url, "/metrics") == 0) {
        pgs_sbuf_t sb = {0};
        pgs_prom_render(w, &sb);
        return answer(conn, MHD_HTTP_OK, PGS_PROMTEXT_CONTENT_TYPE, sb.buf, sb.len);
    }
    if (strcmp(url, "/livez") == 0) {
        /* answered from the loop itself: a stuck loop answers nothing */
        const char *body = verbose ? "[+]loop ok\nlivez check passed\n" : "ok\n";
        return answer(conn, MHD_HTTP_OK, "text/plain", strdup(body), strlen(body));
    }
    if (strcmp(url, "/readyz") == 0)
        return readyz(w, conn, verbose);
    if (strcmp(url, "/status") == 0) {
        json_t *root = status_json(w);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!text)
            return MHD_NO;
        size_t n = strlen(text);
        return answer(conn, MHD_HTTP_OK, "application/json", text, n);
    }
    if (strcmp(url, "/profile") == 0 && w->profile) {
        pgs_sbuf_t sb = {0};
        pgs_profile_json(w->profile, w->worker_id, &sb);
        return answer(conn, MHD_HTTP_OK, "application/json", sb.buf, sb.len);
    }
    const char *nf = "not found: /metrics, /livez, /readyz, /status, /profile\n";
    return answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", strdup(nf), strlen(nf));
}

pgs_http_t *pgs_http_start(pgs_worker_t *w, const char *listen, char *errstr, size_t errstr_size)
{
    char host[256];
    int port;
    if (pgs_http_parse_listen(listen, host, sizeof(host), &port) != 0) {
        snprintf(errstr, errstr_size, "http.listen '%s' is not host:port", listen);
        return NULL;
    }
    struct sockaddr_storage ss = {0};
    unsigned flags = MHD_USE_EPOLL;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &in4->sin_addr) ==
        1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(errstr, errstr_size, "http.listen host '%s' is not an IP address", host);
        return NULL;
    }
    pgs_http_t *http = calloc(1, sizeof(*http));
    if (!http)
        abort();
    http->w = w;
    http->d =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, http, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                         MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!http->d) {
        snprintf(errstr, errstr_size, "cannot listen on %s: %s", listen, strerror(errno));
        free(http);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(http->d, MHD_DAEMON_INFO_BIND_PORT);
    http->port = pinfo ? pinfo->port : port;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = http};
    if (!info || epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) != 0) {
        snprintf(errstr, errstr_size, "cannot watch the HTTP server: %s", strerror(errno));
        MHD_stop_daemon(http->d);
        free(http);
        return NULL;
    }
    return http;
}

void pgs_http_serve(pgs_http_t *http)
{
    if (http)
        MHD_run(http->d);
}

int pgs_http_port(const pgs_http_t *http)
{
    return http->port;
}

void pgs_http_stop(pgs_http_t *http)
{
    if (!http)
        return;
    MHD_stop_daemon(http->d);
    free(http);
}
