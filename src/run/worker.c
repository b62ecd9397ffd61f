/* Worker: `pgscribe run` — wires the stages together and drives the one
 * event loop (Kafka wake-ups and database sockets in one epoll). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "catalog/catalog.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/kafkaconf.h"
#include "common/log.h"
#include "run/fair.h"
#include "run/consume.h"
#include "run/dlq.h"
#include "run/metrics.h"
#include "run/notify.h"
#include "run/outcome.h"
#include "run/schemawait.h"
#include "run/pgnotice.h"
#include "run/pool.h"
#include "run/reach.h"
#include "run/revoke.h"
#include "run/worker.h"

static pgs_worker_t *signal_worker;

/* a SIGTERM/SIGINT, also one that arrives while the worker starts again */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    if (sig != SIGHUP)
        stop_requested = 1;
    if (!signal_worker)
        return;
    if (sig == SIGHUP)
        signal_worker->reload = 1;
    else
        signal_worker->stop = 1;
}

static void reload_catalog_done(pgs_worker_t *w);
static void reap_catalogs(pgs_worker_t *w);
static void catalog_tick(pgs_worker_t *w);

void pgs_worker_step(pgs_worker_t *w, int timeout_ms)
{
    struct epoll_event evs[64];
    int n = epoll_wait(w->epfd, evs, 64, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) { /* consumer queue wake-up */
            char drain[64];
            while (read(w->wake_fds[0], drain, sizeof(drain)) > 0)
                ;
            continue;
        }
        if (w->http && evs[i].data.ptr == w->http) {
            pgs_http_serve(w->http);
            continue;
        }
        if (w->reloader && evs[i].data.ptr == w->reloader) {
            reload_catalog_done(w);
            continue;
        }
        pgs_pool_on_event(NULL, evs[i].data.ptr, evs[i].events);
    }
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        pgs_pool_dispatch(w->streams[s].pool);
    rd_kafka_poll(w->producer, 0);
    pgs_dlq_retry_due(w);
    pgs_consume_store_offsets(w);
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        pgs_pool_tick(w->streams[s].pool);
    if (w->retired_cnt > 0)
        reap_catalogs(w);
    if (w->profile)
        pgs_profile_tick(w->profile, pgs_clock_now_us());
    catalog_tick(w);
    pgs_schemawait_tick(w);
    if (w->maint && pgs_config_int(w->cfg, "audit.maintenance_interval_ms") > 0)
        pgs_maint_tick(w->maint, pgs_clock_now_us(),
                       pgs_config_int(w->cfg, "audit.maintenance_interval_ms"),
                       (int)pgs_config_int(w->cfg, "audit.partitions_ahead"));
    pgs_trace_tick(w->tracer, pgs_clock_now_us());
    pgs_http_serve(w->http); /* its timeouts; requests come through epoll */
}

/* A retired catalog is freed once no work points into it (each command's
 * work holds a reference); the statements of its entities go first, as
 * their shapes point into it too. */
static void reap_catalogs(pgs_worker_t *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->retired_cnt; i++) {
        pgs_catalog_t *cat = w->retired_catalogs[i];
        if (pgs_catalog_refs(cat) > 0) {
            w->retired_catalogs[kept++] = cat;
            continue;
        }
        size_t dropped = 0;
        for (int s = 0; s < PGS_STREAM__COUNT; s++)
            dropped += pgs_pool_drop_catalog(w->streams[s].pool, cat);
        pgs_catalog_free(cat);
        pgs_info("catalog",
                 "catalog before the reload freed: no work uses it, %zu statements dropped",
                 dropped);
    }
    w->retired_cnt = kept;
}

/* Introspects the target schema again: on SIGHUP (a full load), every
 * catalog.refresh_ms and when a command names a column the catalog does not
 * know (a refresh: nothing is built unless the schema's answer changed, so
 * new tables and columns are accepted from then on without a signal). The
 * catalog queries block, so they run on the reloader's helper thread and
 * connection (reload.c) while this loop goes on serving results, delivery
 * reports and signals; the new catalog is swapped in when the reloader's
 * eventfd says it is ready. The old catalog is retired, and freed by
 * reap_catalogs once the works consumed before the reload are done. */
static void reload_catalog(pgs_worker_t *w, int full)
{
    char errstr[256];
    if (pgs_reload_busy(w->reloader)) {
        if (full) {
            w->reload_again = 1; /* this load may predate the change: another follows */
            w->catalog_loading = 1;
            pgs_info("catalog", "SIGHUP: a catalog reload is under way; another follows it");
        }
        return;
    }
    w->reload_db.known = full ? 0 : pgs_catalog_fingerprint(w->catalog);
    w->reload_full = full;
    w->catalog_refresh_last_us = pgs_clock_now_us();
    int rc = pgs_reload_start(w->reloader, errstr, sizeof(errstr));
    if (full)
        w->catalog_loading = rc >= 0; /* READY=1 after a SIGHUP waits for it */
    if (rc < 0)
        pgs_error("catalog", "catalog reload failed, keeping the old one: %s", errstr);
}

void pgs_worker_catalog_kick(pgs_worker_t *w)
{
    /* a burst of such commands starts one load, not one each */
    if (pgs_clock_now_us() - w->catalog_refresh_last_us >= 250000)
        reload_catalog(w, 0);
}

static void catalog_tick(pgs_worker_t *w)
{
    int64_t every_us = pgs_config_int(w->cfg, "catalog.refresh_ms") * 1000;
    if (every_us > 0 && pgs_clock_now_us() - w->catalog_refresh_last_us >= every_us)
        reload_catalog(w, 0);
}

/* The reloader's catalog is ready: it takes over, and the old one is retired
 * until reap_catalogs finds no work pointing into it. */
static void reload_catalog_done(pgs_worker_t *w)
{
    char errstr[512];
    pgs_catalog_t *cat = NULL;
    if (!pgs_reload_take(w->reloader, &cat, errstr, sizeof(errstr)))
        return;
    int full = w->reload_full;
    if (full)
        w->catalog_loading = 0;
    if (w->reload_again) {
        w->reload_again = 0;
        reload_catalog(w, 1);
    }
    if (!cat && !errstr[0]) { /* a refresh found the schema as it was */
        if (w->catalog_refresh_failing)
            pgs_info("catalog", "catalog refresh works again");
        w->catalog_refresh_failing = 0;
        return;
    }
    if (!cat) {
        if (full)
            pgs_error("catalog", "SIGHUP: catalog reload failed, keeping the old one: %s", errstr);
        else if (!w->catalog_refresh_failing) /* once per failing spell, not each tick */
            pgs_warn("catalog", "catalog refresh failed, keeping the old one: %s", errstr);
        w->catalog_refresh_failing = !full || w->catalog_refresh_failing;
        return;
    }
    w->catalog_refresh_failing = 0;
    w->retired_catalogs =
        realloc(w->retired_catalogs, (w->retired_cnt + 1) * sizeof(*w->retired_catalogs));
    w->retired_catalogs[w->retired_cnt++] = w->catalog;
    w->catalog = cat;
    w->catalog_generation++;
    if (full)
        pgs_info("catalog", "SIGHUP: catalog reloaded, %zu entities",
                 pgs_catalog_entity_count(cat));
    else
        pgs_info("catalog", "the target schema changed: catalog reloaded, %zu entities",
                 pgs_catalog_entity_count(cat));
}

/* The worker's first load: each error (file:line: key: why) is an error line
 * of the log writer, as everything else the worker writes to stderr. */
static pgs_config_t *load_config_logged(const char *path)
{
    pgs_config_t *cfg = pgs_config_new();
    if (!cfg || !path)
        return cfg;
    size_t size = 65536;
    char *errs = calloc(1, size);
    if (!errs || pgs_config_load(cfg, path, errs, size) > 0) {
        for (char *line = errs ? strtok(errs, "\n") : NULL; line; line = strtok(NULL, "\n"))
            pgs_error("config", "%s", line);
        pgs_config_free(cfg);
        cfg = NULL;
    }
    free(errs);
    return cfg;
}

/* log.level and log.format, at the start and on each SIGHUP */
static void log_settings(const pgs_config_t *cfg)
{
    pgs_log_level_t lvl;
    if (pgs_log_level_parse(pgs_config_str(cfg, "log.level"), &lvl) == 0)
        pgs_log_set_level(lvl);
    pgs_log_format_t fmt;
    if (pgs_log_format_parse(pgs_config_str(cfg, "log.format"), &fmt) == 0)
        pgs_log_set_format(fmt);
}

static void reload_config(pgs_worker_t *w, const char *path)
{
    w->reload = 0;
    reload_catalog(w, 1);
    if (!path) {
        pgs_info("worker", "SIGHUP: no config file to reload");
        return;
    }
    pgs_config_t *next = pgs_config_new();
    char errs[2048] = "";
    if (pgs_config_load(next, path, errs, sizeof(errs)) != 0) {
        pgs_error("worker", "SIGHUP: new config is invalid, keeping the old one: %s", errs);
        pgs_config_free(next);
        return;
    }
    int fixed = pgs_config_reload(w->cfg, next, errs, sizeof(errs));
    if (fixed > 0)
        pgs_warn("worker", "SIGHUP: %d key(s) need a restart and were kept: %s", fixed, errs);
    log_settings(w->cfg);
    for (int s = 0; s < PGS_STREAM__COUNT; s++)
        pgs_pool_reconfigure(w->streams[s].pool);
    if (pgs_fair_configure(w->limits, w->streams[PGS_STREAM_COMMANDS].lanes, w->cfg, errs,
                           sizeof(errs)) != 0)
        pgs_error("worker", "SIGHUP: limits.overrides is invalid, keeping the old limits: %s",
                  errs);
    pgs_keys_reload(w);
    pgs_info("worker", "SIGHUP: configuration reloaded");
    pgs_config_free(next);
}

static void usage(FILE *fp)
{
    fprintf(fp, "usage: pgscribe run [-c FILE] [--help]\n"
                "Runs a worker: applies commands to PostgreSQL and stores audit events.\n"
                "\n"
                "Consumes the commands topic and applies each command effectively once, in\n"
                "key order, and stores the audit topic's events, each stream through its own\n"
                "connection pool. SIGTERM/SIGINT drain and stop; SIGHUP reloads the reloadable\n"
                "settings and the catalog.\n"
                "\n"
                "options:\n"
                "  -c, --config FILE   configuration file (default $PGSCRIBE_CONFIG, else the\n"
                "                      defaults plus the environment)\n"
                "  -h, --help          show this help\n"
                "\n"
                "exit codes:\n"
                "  0  stopped cleanly (SIGTERM, SIGINT)\n"
                "  1  runtime failure\n"
                "  2  bad arguments\n"
                "  3  invalid configuration\n"
                "  4  database unreachable or schema unusable at start\n"
                "  5  Kafka client could not be created\n");
}

static int worker_init(pgs_worker_t *w, char *errstr, size_t errstr_size)
{
    const char *id = pgs_config_str(w->cfg, "worker.id");
    if (*id) {
        snprintf(w->worker_id, sizeof(w->worker_id), "%s", id);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(w->worker_id, sizeof(w->worker_id), "%s-%d", host, (int)getpid());
    }
    pgs_log_set_worker(w->worker_id);
    pgs_stream_t *cmds = &w->streams[PGS_STREAM_COMMANDS];
    cmds->kind = PGS_STREAM_COMMANDS;
    cmds->name = "commands";
    cmds->topic = pgs_config_str(w->cfg, "topic.commands");
    cmds->dlq_topic = pgs_config_str(w->cfg, "topic.commands_dlq");
    cmds->max_batch = (int)pgs_config_int(w->cfg, "apply.max_batch");
    pgs_stream_t *audit = &w->streams[PGS_STREAM_AUDIT];
    audit->kind = PGS_STREAM_AUDIT;
    audit->name = "audit";
    audit->topic = pgs_config_str(w->cfg, "topic.audit");
    audit->dlq_topic = pgs_config_str(w->cfg, "topic.audit_dlq");
    audit->max_batch = (int)pgs_config_int(w->cfg, "audit.max_batch");
    w->metrics_topic = pgs_config_str(w->cfg, "topic.metrics");
    w->backlog_max = (size_t)pgs_config_int(w->cfg, "apply.backlog_max");
    w->limits = pgs_ratelimit_new();
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fds[0] = w->wake_fds[1] = -1;
    w->reload_db.conninfo = strdup(pgs_config_str(w->cfg, "pg.conninfo"));
    w->reload_db.schema = strdup(pgs_config_str(w->cfg, "pg.schema"));
    w->reload_db.connect_timeout_s =
        (int)((pgs_config_int(w->cfg, "pg.connect_timeout_ms") + 999) / 1000);
    w->reloader = pgs_reload_new(pgs_reload_from_db, &w->reload_db);
    if (!w->reloader || !w->reload_db.conninfo || !w->reload_db.schema) {
        snprintf(errstr, errstr_size, "cannot set up the catalog reloader");
        return PGS_EXIT_FAILURE;
    }
    struct epoll_event rev = {.events = EPOLLIN, .data.ptr = w->reloader};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pgs_reload_fd(w->reloader), &rev) != 0) {
        snprintf(errstr, errstr_size, "cannot watch the catalog reloader: %s", strerror(errno));
        return PGS_EXIT_FAILURE;
    }
    w->maint = pgs_maint_new(w->reload_db.conninfo, w->worker_id, w->reload_db.connect_timeout_s);
    pgs_dlq_init(w);
    w->codec = pgs_codec_new(errstr, errstr_size);
    if (!w->codec)
        return PGS_EXIT_FAILURE;
    if (pgs_schemawait_init(w, errstr, errstr_size))
        return PGS_EXIT_CONFIG;
    return 0;
}

static int load_catalog(pgs_worker_t *w, const char *conninfo, char *errstr, size_t errstr_size)
{
    PGconn *pg = PQconnectdb(conninfo);
    pgs_pgnotice_attach(pg);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(errstr, errstr_size, "database: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return PGS_EXIT_DATABASE;
    }
    w->catalog = pgs_catalog_load(pg, pgs_config_str(w->cfg, "pg.schema"), errstr, errstr_size);
    snprintf(w->db_name, sizeof(w->db_name), "%s", PQdb(pg) ? PQdb(pg) : "");
    PQfinish(pg);
    if (!w->catalog)
        return PGS_EXIT_DATABASE;
    if (pgs_catalog_entity_count(w->catalog) == 0) {
        snprintf(errstr, errstr_size,
                 "schema %s has no entity (a table with clinic_id, a primary key and row-level "
                 "security); run pgscribe migrate",
                 pgs_config_str(w->cfg, "pg.schema"));
        return PGS_EXIT_DATABASE;
    }
    for (size_t i = 0; i < pgs_catalog_entity_count(w->catalog); i++) {
        const pgs_entity_t *e = pgs_catalog_entity_at(w->catalog, i);
        pgs_info("catalog", "entity %s.%s: %d columns, versioned=%s",
                 pgs_catalog_schema(w->catalog), e->name, e->ncols,
                 e->version_col >= 0 ? "yes" : "no");
    }
    return 0;
}

static int producer_start(pgs_worker_t *w, char *errstr, size_t errstr_size)
{
    /* dead letters carry the original value, up to the decoder's 4 MiB */
    static const char *const defaults[] = {
        "message.max.bytes", "5242880", "compression.type", "lz4", "linger.ms", "5", NULL};
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(w->cfg, PGS_KAFKA_PRODUCER, defaults, NULL, errstr, errstr_size);
    if (!conf)
        return -1;
    /* a dead letter must never be lost or doubled by a retry */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
        rd_kafka_conf_set(conf, "client.id", w->worker_id, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, pgs_dlq_delivery_cb);
    pgs_reach_conf(w, conf);
    rd_kafka_conf_set_opaque(conf, w);
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    return w->producer ? 0 : -1;
}

static void worker_free(pgs_worker_t *w)
{
    if (w->close_queue)
        rd_kafka_queue_destroy(w->close_queue);
    if (w->lag_queue)
        rd_kafka_queue_destroy(w->lag_queue);
    if (w->consumer_queue)
        rd_kafka_queue_destroy(w->consumer_queue);
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        if (w->streams[s].queue)
            rd_kafka_queue_destroy(w->streams[s].queue);
    }
    if (w->consumer)
        rd_kafka_destroy(w->consumer);
    pgs_trace_free(w->tracer); /* (its last batch goes to the producer) */
    if (w->producer)
        rd_kafka_destroy(w->producer);
    for (int s = 0; s < PGS_STREAM__COUNT; s++) {
        pgs_stream_t *st = &w->streams[s];
        for (int32_t i = 0; i < st->parts_cnt; i++) {
            if (st->parts[i]) {
                pgs_offsets_free(st->parts[i]->offsets);
                free(st->parts[i]);
            }
        }
        free(st->parts);
        pgs_pool_free(st->pool);
        pgs_lanes_free(st->lanes);
    }
    pgs_ratelimit_free(w->limits);
    pgs_keys_stop(w);
    pgs_profile_free(w->profile); /* waits for an EXPLAIN under way */
    pgs_reload_free(w->reloader); /* waits for a load under way */
    pgs_maint_free(w->maint);     /* waits for a pass under way */
    pgs_reload_db_close(&w->reload_db);
    free((char *)w->reload_db.conninfo);
    free((char *)w->reload_db.schema);
    pgs_catalog_free(w->catalog);
    for (size_t i = 0; i < w->retired_cnt; i++)
        pgs_catalog_free(w->retired_catalogs[i]);
    free(w->retired_catalogs);
    pgs_codec_free(w->codec);
    pgs_schemawait_free(w);
    pgs_retryq_free(&w->dlq_pending);
    pgs_metrics_counters_reset(&w->ctr);
    pgs_metrics_totals_free(&w->ctr.totals);
    pgs_http_stop(w->http);
    if (w->wake_fds[0] >= 0) {
        close(w->wake_fds[0]);
        close(w->wake_fds[1]);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    pgs_config_free(w->cfg);
}

/* run_worker's answer when the worker is to start again in-process */
#define RUN_RESTART (-1)
static int run_worker(const char *path);

int pgs_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (!path)
        path = getenv("PGSCRIBE_CONFIG");
    /* a database identity changed on a reconnect (a promotion, a restore
     * behind the same address): the worker has left the group cleanly and
     * starts again in-process, so its new assignment rewinds what the
     * database forgot (docs/dr.md) */
    for (;;) {
        int rc = run_worker(path);
        if (rc != RUN_RESTART)
            return rc;
        if (stop_requested)
            return PGS_EXIT_OK;
        pgs_info("worker", "starting again after the database identity changed");
    }
}

static int run_worker(const char *path)
{
    pgs_worker_t wk = {0}, *w = &wk;
    w->epfd = -1;
    w->wake_fds[0] = w->wake_fds[1] = -1;
    w->cfg = load_config_logged(path);
    if (!w->cfg)
        return PGS_EXIT_CONFIG;
    log_settings(w->cfg);
    char why[256];
    if (pgs_config_file_secret_exposed(path, why, sizeof(why)))
        pgs_warn("worker",
                 "config file %s holds a secret (%s) and is readable by its group or others; "
                 "chmod 600 it or pass the secret through the environment",
                 path, why);
    char errstr[512] = "";
    int rc = worker_init(w, errstr, sizeof(errstr));
    if (rc == 0 && pgs_keys_start(w, errstr, sizeof(errstr)) != 0)
        rc = PGS_EXIT_CONFIG;
    const char *conninfo = pgs_config_str(w->cfg, "pg.conninfo");
    if (rc == 0)
        rc = load_catalog(w, conninfo, errstr, sizeof(errstr));
    if (rc == 0) {
        /* one pool per stream: the bulkheads */
        const char *sizes[PGS_STREAM__COUNT] = {"apply.max_in_flight", "audit.max_in_flight"};
        w->profile = pgs_profile_new(w->cfg, conninfo);
        for (int s = 0; s < PGS_STREAM__COUNT && rc == 0; s++) {
            pgs_stream_t *st = &w->streams[s];
            st->lanes = pgs_lanes_new();
            if (st->kind == PGS_STREAM_COMMANDS &&
                pgs_fair_configure(w->limits, st->lanes, w->cfg, errstr, sizeof(errstr)) != 0) {
                rc = PGS_EXIT_CONFIG;
                break;
            }
            pgs_pool_settings_t set = {
                .name = st->name,
                .audit = st->kind == PGS_STREAM_AUDIT,
                /* only write commands adapt: the audit pool is small and append-only */
                .adaptive = st->kind == PGS_STREAM_COMMANDS &&
                            pgs_config_bool(w->cfg, "apply.adaptive_in_flight"),
                .topic = st->topic,
                .conninfo = conninfo,
                .schema = pgs_catalog_schema(w->catalog),
                .size = (int)pgs_config_int(w->cfg, sizes[s]),
                .max_batch = st->max_batch,
                .lanes = st->lanes,
                .cfg = w->cfg,
                .profile = w->profile,
            };
            st->pool = pgs_pool_new(&set, &pgs_outcome_ops, w, errstr, sizeof(errstr));
            if (!st->pool)
                rc = PGS_EXIT_DATABASE;
        }
    }
    if (rc == 0 && (producer_start(w, errstr, sizeof(errstr)) != 0 ||
                    pgs_consume_start(w, errstr, sizeof(errstr)) != 0))
        rc = PGS_EXIT_KAFKA;
    if (rc == 0) {
        w->tracer = pgs_trace_new(w->cfg, w->worker_id, w->producer, errstr, sizeof(errstr));
        if (!w->tracer)
            rc = PGS_EXIT_CONFIG;
        else
            pgs_trace_set_db(w->tracer, w->db_name);
    }
    const char *listen = pgs_config_str(w->cfg, "http.listen");
    if (rc == 0 && listen && *listen) {
        w->http = pgs_http_start(w, listen, errstr, sizeof(errstr));
        if (!w->http)
            rc = PGS_EXIT_CONFIG;
        else
            pgs_info("http", "listening on %s (port %d): /metrics /livez /readyz /status /profile",
                     listen, pgs_http_port(w->http));
    }
    if (rc != 0) {
        pgs_error("worker", "cannot start: %s", errstr);
        worker_free(w);
        return rc;
    }

    signal_worker = w;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int64_t t0 = pgs_clock_now_us();
    w->metrics_interval_start_ms = pgs_clock_now_ms();
    w->metrics_next_us = t0 + pgs_config_int(w->cfg, "metrics.interval_ms") * 1000;
    pgs_stream_t *cmds = &w->streams[PGS_STREAM_COMMANDS], *audit = &w->streams[PGS_STREAM_AUDIT];
    pgs_info("worker",
             "pgscribe %s running: commands=%s (max_in_flight=%d max_batch=%d) audit=%s "
             "(max_in_flight=%d max_batch=%d)",
             PGS_VERSION, cmds->topic, pgs_pool_size(cmds->pool), cmds->max_batch, audit->topic,
             pgs_pool_size(audit->pool), audit->max_batch);
    pgs_notify_init(w);
    while (!w->stop) {
        if (stop_requested)
            w->stop = 1; /* a SIGTERM while the worker started again */
        if (w->reload) {
            pgs_notify_reloading(w);
            reload_config(w, path);
        }
        pgs_consume_update_pauses(w);
        int got = pgs_consume_poll(w, 5000);
        pgs_worker_step(w, got > 0 ? 0 : 20);
        pgs_revoke_serve(w);
        pgs_consume_check_identity(w);
        pgs_metrics_maybe_report(w, 0);
        pgs_notify_tick(w);
        const char *refused;
        if (pgs_reach_start_refused(w, &refused)) {
            /* a wrong CA, host name or listener: no retry mends it */
            pgs_error("worker", "cannot start: kafka refused the connection before any contact: %s",
                      refused);
            signal_worker = NULL;
            worker_free(w);
            return PGS_EXIT_KAFKA;
        }
    }
    pgs_notify_stopping(w);

    pgs_info("worker", "stopping: draining %zu command(s) within %lld ms", w->works_live,
             (long long)pgs_config_int(w->cfg, "shutdown.drain_timeout_ms"));
    /* a revocation under way is drained and unassigned first: the close
     * starts from a settled group (closing while librdkafka waits for the
     * unassign call lets the member leave before its offsets are committed) */
    while (pgs_revoke_pending(w)) {
        pgs_worker_step(w, 10);
        pgs_revoke_serve(w);
    }
    pgs_consume_store_offsets(w);
    /* the close revokes every partition: this loop drains and commits them
     * (as for any revocation) until the member has left the group */
    if (pgs_consume_close_start(w) == 0) {
        while (!pgs_consume_close_serve(w) || pgs_revoke_pending(w)) {
            pgs_worker_step(w, 10);
            pgs_revoke_serve(w);
        }
    }
    pgs_metrics_maybe_report(w, 1);
    pgs_trace_flush(w->tracer); /* every finished span out */
    rd_kafka_flush(w->producer, 10000);
    if (pgs_trace_buffered(w->tracer) > 0) {
        /* spans of dead letters acknowledged during that flush */
        pgs_trace_flush(w->tracer);
        rd_kafka_flush(w->producer, 5000);
    }
    double secs = (double)(pgs_clock_now_us() - t0) / 1e6;
    pgs_info("worker",
             "stopped: consumed=%lld applied=%lld duplicates=%lld dead_lettered=%lld "
             "dlq_pending=%zu commit_p50_ms=%.2f commit_p99_ms=%.2f uptime_s=%.1f",
             (long long)w->ctr.total_consumed, (long long)w->ctr.total_applied,
             (long long)w->ctr.total_duplicates, (long long)w->ctr.total_dead_lettered,
             pgs_dlq_pending(w),
             (double)pgs_hist_percentile(&w->ctr.total_commit_latency, 50) / 1000.0,
             (double)pgs_hist_percentile(&w->ctr.total_commit_latency, 99) / 1000.0, secs);
    signal_worker = NULL;
    int rc_exit = w->restart_to_rewind && !stop_requested ? RUN_RESTART : PGS_EXIT_OK;
    worker_free(w);
    return rc_exit;
}
