/* `pgscribe audit anchor` and the anchor check of `pgscribe audit verify`
 * (see audit_anchor.h). An anchor record is one JSON object a clinic:
 * {"clinic_id", "seq", "hash" (hex), "recorded_at", "anchored_at",
 * "system_identifier", "database"}, keyed by clinic_id on the anchor topic.
 * It holds no column value of any command: only the chain's head. */
#include "command/audit_anchor.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/kafkaconf.h"

#define ANCHOR_TS "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"

/* One record per clinic with a non-empty chain, built by the server (its
 * JSON escaping); the system identifier tells one cluster from a restored
 * copy of it. Heads at seq 0 (a lock taken, nothing chained) are skipped. */
static const char *const SQL_HEADS =
    "SELECT h.clinic_id, json_build_object('clinic_id', h.clinic_id, 'seq', h.seq,"
    " 'hash', encode(h.hash, 'hex'),"
    " 'recorded_at', to_char(h.recorded_at AT TIME ZONE 'UTC', " ANCHOR_TS "),"
    " 'anchored_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', " ANCHOR_TS "),"
    " 'system_identifier', $1::text, 'database', current_database())::text"
    " FROM audit.chain_heads h WHERE h.seq > 0 ORDER BY 1";

static void usage(FILE *out)
{
    fprintf(out, "usage: pgscribe audit anchor [-c FILE] [--topic T] [--no-publish]\n"
                 "                             [--conninfo CONNINFO] [--help]\n"
                 "Publishes each clinic's audit chain head outside the database.\n"
                 "\n"
                 "Reads audit.chain_heads and produces one JSON record per clinic (clinic_id,\n"
                 "seq, hash, recorded_at, anchored_at, system_identifier, database) to the\n"
                 "anchor topic, keyed by clinic_id, and prints the records, one a line.\n"
                 "`pgscribe audit verify --anchor-topic` (or --anchors FILE with this output)\n"
                 "later checks that the trail still holds each anchored hash at its seq.\n"
                 "\n"
                 "options:\n"
                 "  -c, --config FILE    configuration file (Kafka settings, audit.anchor_topic)\n"
                 "      --topic T        publish to T instead of audit.anchor_topic\n"
                 "      --no-publish     print the records only\n"
                 "      --conninfo C     a role that may read audit.chain_heads (an auditor);\n"
                 "                       default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
                 "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
                 "  -h, --help           show this help\n"
                 "\n"
                 "exit codes:\n"
                 "  0  every head published (or printed)\n"
                 "  1  a record was not delivered\n"
                 "  2  bad arguments\n"
                 "  3  invalid configuration\n"
                 "  4  database unreachable or audit.chain_heads unreadable\n"
                 "  5  Kafka client could not be created\n");
}

/* The cluster's identity; NULL when the role may not call
 * pg_control_system() (the record then carries null). */
static char *system_identifier(PGconn *pg)
{
    PGresult *res = PQexec(pg, "SELECT system_identifier::text FROM pg_control_system()");
    char *id = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        id = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return id;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *failed = opaque;
    if (m->err) {
        fprintf(stderr, "pgscribe audit anchor: not delivered: %s\n", rd_kafka_err2str(m->err));
        (*failed)++;
    }
}

static rd_kafka_t *anchor_producer(const pgs_config_t *cfg, int *failed)
{
    char errstr[512];
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, NULL, NULL, errstr, sizeof(errstr));
    if (conf && (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
                 rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    rd_kafka_t *rk = NULL;
    if (conf) {
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, failed);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    }
    if (!rk)
        fprintf(stderr, "pgscribe audit anchor: %s\n", errstr);
    return rk;
}

int pgs_audit_anchor_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"topic", required_argument, NULL, 't'},
        {"conninfo", required_argument, NULL, 'C'}, {"no-publish", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *topic = NULL, *conninfo = NULL;
    int publish = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'C':
            conninfo = optarg;
            break;
        case 'n':
            publish = 0;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pgscribe audit anchor: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    if (!topic)
        topic = pgs_config_str(cfg, "audit.anchor_topic");
    PGconn *pg = PQconnectdb(pgs_cli_admin_conninfo(conninfo));
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "pgscribe audit anchor: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        pgs_config_free(cfg);
        return PGS_EXIT_DATABASE;
    }
    char *sysid = system_identifier(pg);
    const char *params[] = {sysid};
    PGresult *res = PQexecParams(pg, SQL_HEADS, 1, NULL, params, NULL, NULL, 0);
    free(sysid);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscribe audit anchor: reading audit.chain_heads: %s", PQerrorMessage(pg));
        PQclear(res);
        PQfinish(pg);
        pgs_config_free(cfg);
        return PGS_EXIT_DATABASE;
    }
    PQfinish(pg);
    int failed = 0, rc = PGS_EXIT_OK;
    rd_kafka_t *rk = publish ? anchor_producer(cfg, &failed) : NULL;
    if (publish && !rk)
        rc = PGS_EXIT_KAFKA;
    int n = PQntuples(res);
    for (int i = 0; i < n && rc == PGS_EXIT_OK; i++) {
        const char *clinic = PQgetvalue(res, i, 0), *rec = PQgetvalue(res, i, 1);
        printf("%s\n", rec);
        if (!rk)
            continue;
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(clinic, strlen(clinic)),
                              RD_KAFKA_V_VALUE((void *)rec, strlen(rec)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err) {
            fprintf(stderr, "pgscribe audit anchor: %s: %s\n", topic, rd_kafka_err2str(err));
            failed++;
        }
        rd_kafka_poll(rk, 0);
    }
    if (rk) {
        rd_kafka_flush(rk, 30000);
        if (rd_kafka_outq_len(rk) > 0) {
            fprintf(stderr, "pgscribe audit anchor: %d record(s) still undelivered after 30 s\n",
                    rd_kafka_outq_len(rk));
            failed++;
        }
        rd_kafka_destroy(rk);
        if (rc == PGS_EXIT_OK && failed)
            rc = PGS_EXIT_FAILURE;
        if (rc == PGS_EXIT_OK)
            fprintf(stderr, "anchored %d clinic heads to %s\n", n, topic);
    }
    PQclear(res);
    pgs_config_free(cfg);
    return rc;
}

/* ---- reading anchors back ---------------------------------------------------- */

/* One anchor record, parsed with jansson (the JSON library the project
 * already uses): any valid JSON escape in the clinic id is decoded. */
int pgs_audit_anchor_parse(const char *line, size_t len, pgs_audit_anchors_t *out)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    const char *clinic = json_string_value(json_object_get(o, "clinic_id"));
    const char *hash = json_string_value(json_object_get(o, "hash"));
    const char *at = json_string_value(json_object_get(o, "anchored_at"));
    json_t *seq = json_object_get(o, "seq");
    if (!json_is_object(o) || !clinic || !json_is_integer(seq) || json_integer_value(seq) <= 0 ||
        !hash || strlen(hash) != 64 || strspn(hash, "0123456789abcdef") != 64) {
        json_decref(o);
        return -1;
    }
    pgs_audit_anchor_t a = {.clinic = strdup(clinic), .seq = (int64_t)json_integer_value(seq)};
    snprintf(a.hash, sizeof(a.hash), "%s", hash);
    snprintf(a.anchored_at, sizeof(a.anchored_at), "%s", at ? at : "");
    json_decref(o);
    if (!a.clinic)
        abort();
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->v = realloc(out->v, out->cap * sizeof(*out->v));
        if (!out->v)
            abort();
    }
    out->v[out->n++] = a;
    return 0;
}

static int load_file(const char *file, pgs_audit_anchors_t *out)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        fprintf(stderr, "pgscribe audit verify: cannot open %s\n", file);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0)
        pgs_audit_anchor_parse(line, (size_t)len, out);
    free(line);
    if (f != stdin)
        fclose(f);
    return 0;
}

/* Every record of the topic, from each partition's low to its high
 * watermark at the start; no consumer group offsets are committed. */
static int load_topic(const char *config_path, const char *topic, pgs_audit_anchors_t *out)
{
    pgs_config_t *cfg = pgs_cli_load_config(config_path);
    if (!cfg)
        return -1;
    if (!topic)
        topic = pgs_config_str(cfg, "audit.anchor_topic");
    char errstr[512];
    static const char *const defaults[] = {"enable.auto.commit", "false", "group.id",
                                           "pgscribe-audit-verify", NULL};
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, defaults, NULL, errstr, sizeof(errstr));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)) : NULL;
    if (!rk) {
        fprintf(stderr, "pgscribe audit verify: %s\n", errstr);
        pgs_config_free(cfg);
        return -1;
    }
    int rc = -1;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 15000);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    int64_t *high = NULL;
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "pgscribe audit verify: topic %s: %s\n", topic,
                rd_kafka_err2str(err             ? err
                                 : md->topic_cnt ? md->topics[0].err
                                                 : err));
        goto done;
    }
    int np = md->topics[0].partition_cnt;
    high = calloc((size_t)np + 1, sizeof(*high));
    for (int i = 0; i < np; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 15000);
        if (err) {
            fprintf(stderr, "pgscribe audit verify: %s [%d]: %s\n", topic, id,
                    rd_kafka_err2str(err));
            goto done;
        }
        if (hi > lo)
            rd_kafka_topic_partition_list_add(parts, topic, id)->offset = lo;
        high[i] = hi;
    }
    int pending = parts->cnt;
    if (pending > 0 && rd_kafka_assign(rk, parts)) {
        fprintf(stderr, "pgscribe audit verify: cannot read %s\n", topic);
        goto done;
    }
    int64_t deadline = pgs_clock_now_ms() + 60000;
    while (pending > 0 && pgs_clock_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (!m->err) {
            pgs_audit_anchor_parse(m->payload, m->len, out);
            for (int i = 0; i < np; i++) {
                if (md->topics[0].partitions[i].id == m->partition && m->offset + 1 == high[i])
                    pending--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (pending > 0)
        fprintf(stderr, "pgscribe audit verify: %s: %d partition(s) not read to the end\n", topic,
                pending);
    else
        rc = 0;
done:
    free(high);
    rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    pgs_config_free(cfg);
    return rc;
}

int pgs_audit_anchor_load(const char *file, const char *config_path, const char *topic,
                          pgs_audit_anchors_t *out)
{
    return file ? load_file(file, out) : load_topic(config_path, topic, out);
}

int pgs_audit_anchor_check(PGconn *pg, const pgs_audit_anchors_t *a, const char *clinic,
                           const char *from)
{
    int bad = 0;
    size_t checked = 0, skipped = 0;
    for (size_t i = 0; i < a->n; i++) {
        const pgs_audit_anchor_t *an = &a->v[i];
        if (clinic && strcmp(clinic, an->clinic) != 0)
            continue;
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRId64, an->seq);
        const char *params[] = {an->clinic, seq};
        PGresult *res = PQexecParams(pg,
                                     "SELECT encode(hash, 'hex') FROM audit.events"
                                     " WHERE clinic_id = $1 AND seq = $2::bigint",
                                     2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "pgscribe audit verify: anchors: %s", PQerrorMessage(pg));
            PQclear(res);
            return -1;
        }
        if (PQntuples(res) == 0 && from) {
            skipped++; /* before --from: retention may have dropped it */
        } else if (PQntuples(res) == 0) {
            printf("broken: clinic %s seq %" PRId64 ": anchored row missing (anchored at %s); "
                   "expected %s, found none\n",
                   an->clinic, an->seq, an->anchored_at, an->hash);
            bad++;
        } else if (strcmp(PQgetvalue(res, 0, 0), an->hash) != 0) {
            printf("broken: clinic %s seq %" PRId64 ": hash differs from the anchor published "
                   "at %s; expected %s, found %s\n",
                   an->clinic, an->seq, an->anchored_at, an->hash, PQgetvalue(res, 0, 0));
            bad++;
        }
        checked++;
        PQclear(res);
    }
    printf("anchors: %zu checked, %zu skipped (before --from), %d broken\n", checked - skipped,
           skipped, bad);
    return bad;
}

void pgs_audit_anchors_free(pgs_audit_anchors_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].clinic);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

int pgs_audit_verify_anchors(const char *conninfo, const char *file, const char *config_path,
                             const char *topic, const char *clinic, const char *from)
{
    pgs_audit_anchors_t a = {0};
    if (pgs_audit_anchor_load(file, config_path, topic, &a) != 0)
        return PGS_EXIT_FAILURE;
    if (a.n == 0) {
        fprintf(stderr, "pgscribe audit verify: no anchor record found in %s\n",
                file ? file : "the anchor topic");
        return PGS_EXIT_FAILURE;
    }
    PGconn *pg = PQconnectdb(conninfo);
    int rc = PGS_EXIT_OK;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "pgscribe audit verify: cannot connect: %s", PQerrorMessage(pg));
        rc = PGS_EXIT_DATABASE;
    } else {
        int bad = pgs_audit_anchor_check(pg, &a, clinic, from);
        rc = bad == 0 ? PGS_EXIT_OK : PGS_EXIT_FAILURE;
    }
    PQfinish(pg);
    pgs_audit_anchors_free(&a);
    return rc;
}
