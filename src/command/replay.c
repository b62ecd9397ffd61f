/* `pgscribe replay`: lists dead letters, or re-produces them (original key,
 * value and non-pgscribe headers) to the source topic paired with their
 * dead-letter topic once the cause is fixed, streaming in bounded memory. */
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/xalloc.h"
#include "codec/codec.h"
#include "common/config.h"
#include "common/dlqseal.h"
#include "common/keyring.h"
#include "common/kafkaconf.h"
#include "command/replay_filter.h"

#define REPLAY_HDR_PREFIX "pgscribe."

enum {
    OPT_DLQ = 256,
    OPT_CLASS,
    OPT_CODE,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_CLINIC,
    OPT_LIST,
    OPT_DRY_RUN,
    OPT_TIMEOUT,
};

/* Dead letters in flight to the source topic at most: the replay holds this
 * many copies, not the whole topic. */
#define REPLAY_WINDOW 1000

/* What one replay run read and did. */
typedef struct {
    long long read, matched;
    long long replayable;    /* --dry-run: would be produced */
    long long skipped;       /* no source topic, or the value was omitted */
    long long refused;       /* naming another topic than the paired source topic */
    long long undecryptable; /* a sealed value no key here opens */
    long long delivered, failed;
} replay_count_t;

static volatile sig_atomic_t replay_stop;

static void replay_on_stop(int sig)
{
    (void)sig;
    replay_stop = 1;
}

static void replay_usage(FILE *fp)
{
    fprintf(fp,
            "usage: pgscribe replay [-c FILE] [-b BROKERS] [--dlq TOPIC] [--class C]...\n"
            "                       [--code X]... [--since T] [--until T] [--clinic ID]...\n"
            "                       [--list] [--dry-run] [--timeout-ms N] [--help]\n"
            "Lists dead letters, or re-produces them to their source topic.\n"
            "\n"
            "Reads a dead-letter topic from the beginning to its end and re-produces each\n"
            "matching dead letter, as it is read, to the source topic paired with that\n"
            "dead-letter topic (topic.commands for topic.commands_dlq, topic.audit for\n"
            "topic.audit_dlq) with its original key, value and headers, minus the\n"
            "pgscribe.* headers; a sealed value (pgscribe.value_encryption) is decrypted\n"
            "with crypto.keyring first, and one that does not decrypt is not replayed.\n"
            "A dead letter whose pgscribe.source.topic header names\n"
            "another topic is refused. Replaying twice is harmless: the worker applies\n"
            "each command id once. All given filters must match.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    configuration file\n"
            "  -b, --brokers LIST   bootstrap servers (default: config, $PGSCRIBE_KAFKA)\n"
            "      --dlq TOPIC      dead-letter topic (default: topic.commands_dlq)\n"
            "      --class C        error class: decode, validate, tenant, db-transient,\n"
            "                       db-permanent (repeatable: any of them)\n"
            "      --code X         error code, e.g. 23514 or DECODE_BAD_MAGIC (repeatable)\n"
            "      --since T        failed at or after T (RFC 3339, e.g. 2026-11-26T19:00:00Z)\n"
            "      --until T        failed at or before T (RFC 3339)\n"
            "      --clinic ID      clinic of the message key (repeatable)\n"
            "      --list           print each matching dead letter as one JSON line (never\n"
            "                       its value) and produce nothing\n"
            "      --dry-run        count what would be replayed, produce nothing\n"
            "      --timeout-ms N   give up after N ms without progress (30000)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  ok\n"
            "  1  a delivery failed, a sealed value did not decrypt, or interrupted\n"
            "  2  bad arguments\n"
            "  3  invalid configuration, or a --dlq topic paired with no source topic\n"
            "  5  Kafka error or time-out\n");
}

static int replay_parse_args(int argc, char **argv, pgs_replay_opts_t *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"brokers", required_argument, NULL, 'b'},
        {"dlq", required_argument, NULL, OPT_DLQ},
        {"class", required_argument, NULL, OPT_CLASS},
        {"code", required_argument, NULL, OPT_CODE},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"clinic", required_argument, NULL, OPT_CLINIC},
        {"list", no_argument, NULL, OPT_LIST},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    char *end;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:b:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o->path = optarg;
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case OPT_DLQ:
            o->dlq = optarg;
            break;
        case OPT_CLASS:
            if (!pgs_replay_filter_class_known(optarg)) {
                fprintf(stderr, "replay: --class %s: unknown error class\n", optarg);
                return PGS_EXIT_USAGE;
            }
            o->classes[o->nclasses++] = optarg;
            break;
        case OPT_CODE:
            o->codes[o->ncodes++] = optarg;
            break;
        case OPT_CLINIC:
            o->clinics[o->nclinics++] = optarg;
            break;
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t *at = opt == OPT_SINCE ? &o->since_ms : &o->until_ms;
            if (pgs_replay_filter_parse_time(optarg, strlen(optarg), at) != 0) {
                fprintf(stderr, "replay: --%s %s: not an RFC 3339 time\n",
                        opt == OPT_SINCE ? "since" : "until", optarg);
                return PGS_EXIT_USAGE;
            }
            *(opt == OPT_SINCE ? &o->has_since : &o->has_until) = 1;
            break;
        }
        case OPT_LIST:
            o->list = 1;
            break;
        case OPT_DRY_RUN:
            o->dry_run = 1;
            break;
        case OPT_TIMEOUT:
            o->timeout_ms = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || o->timeout_ms <= 0 || o->timeout_ms > 86400000) {
                fprintf(stderr, "replay: --timeout-ms must be 1..86400000\n");
                return PGS_EXIT_USAGE;
            }
            break;
        case 'h':
            replay_usage(stdout);
            return -1;
        default:
            replay_usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "replay: unexpected argument %s\n", argv[optind]);
        return PGS_EXIT_USAGE;
    }
    if (o->has_since && o->has_until && o->since_ms > o->until_ms) {
        fprintf(stderr, "replay: --since is later than --until\n");
        return PGS_EXIT_USAGE;
    }
    return PGS_EXIT_OK;
}

static rd_kafka_conf_t *replay_base_conf(const pgs_replay_opts_t *o, const pgs_config_t *cfg,
                                         pgs_kafka_role_t role, const char *const *defaults)
{
    char errstr[256];
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, role, defaults, o->brokers, errstr, sizeof(errstr));
    if (!conf)
        fprintf(stderr, "pgscribe replay: %s\n", errstr);
    return conf;
}

static int64_t replay_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one source topic a dead letter of @p dlq may go back to: the topic the
 * worker dead-letters from into it. A dead letter's own header only has to
 * agree, so whoever can write to a dead-letter topic cannot make a replay
 * write anywhere else. @returns NULL when @p dlq is neither configured one. */
static const char *replay_paired_topic(const pgs_config_t *cfg, const char *dlq)
{
    static const char *const pairs[][2] = {{"topic.commands_dlq", "topic.commands"},
                                           {"topic.audit_dlq", "topic.audit"}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const char *d = pgs_config_str(cfg, pairs[i][0]);
        const char *src = pgs_config_str(cfg, pairs[i][1]);
        if (*d && *src && strcmp(d, dlq) == 0 && strcmp(src, dlq) != 0)
            return src;
    }
    return NULL;
}

static void replay_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    replay_count_t *n = opaque;
    if (rkm->err) {
        n->failed++;
        fprintf(stderr, "replay: not delivered to %s: %s\n", rd_kafka_topic_name(rkm->rkt),
                rd_kafka_err2str(rkm->err));
    } else {
        n->delivered++;
    }
}

/* @returns the headers to replay: every original header but pgscribe.*. */
static rd_kafka_headers_t *replay_headers(rd_kafka_headers_t *orig)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
    const char *name;
    const void *val;
    size_t len;
    for (size_t i = 0;
         orig && rd_kafka_header_get_all(orig, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (strncmp(name, REPLAY_HDR_PREFIX, strlen(REPLAY_HDR_PREFIX)) != 0)
            rd_kafka_header_add(hdrs, name, -1, val, val ? (ssize_t)len : 0);
    }
    return hdrs;
}

static rd_kafka_t *replay_producer_new(const pgs_replay_opts_t *o, const pgs_config_t *cfg,
                                       replay_count_t *n)
{
    char errstr[512], num[32], window[32];
    rd_kafka_conf_t *conf = replay_base_conf(o, cfg, PGS_KAFKA_PRODUCER, NULL);
    if (!conf)
        return NULL;
    snprintf(num, sizeof(num), "%ld", o->timeout_ms);
    snprintf(window, sizeof(window), "%d", REPLAY_WINDOW);
    /* message.timeout.ms bounds the wait for each delivery report: a broker
     * that never answers turns into failed deliveries, not a hang */
    if (rd_kafka_conf_set(conf, "message.timeout.ms", num, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", window, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr))) {
        fprintf(stderr, "replay: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, replay_dr_cb);
    rd_kafka_conf_set_opaque(conf, n);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "replay: %s\n", errstr);
    }
    return rk;
}

/* Opens a sealed dead-letter value (pgscribe.value_encryption) with
 * @p ring, bound to the source position and clinic its headers name.
 * @returns 0 with the plaintext in *out (free()), or -1 with @p err set. */
static int replay_open(const PgsKeyring *ring, const rd_kafka_message_t *m,
                       rd_kafka_headers_t *orig, const char *topic, unsigned char **out,
                       size_t *out_len, char *err, size_t errlen)
{
    char enc[16], clinic[256], part[32], off[32];
    if (!pgs_replay_filter_header(orig, PGS_DLQ_HDR_ENC, enc, sizeof(enc)) ||
        strcmp(enc, PGS_DLQ_ENC_V1) != 0) {
        snprintf(err, errlen, "unknown value encryption");
        return -1;
    }
    if (!pgs_replay_filter_header(orig, "pgscribe.clinic", clinic, sizeof(clinic)))
        clinic[0] = '\0';
    char *end;
    if (!pgs_replay_filter_header(orig, "pgscribe.source.partition", part, sizeof(part)) ||
        !pgs_replay_filter_header(orig, "pgscribe.source.offset", off, sizeof(off))) {
        snprintf(err, errlen, "no source position");
        return -1;
    }
    long p = strtol(part, &end, 10);
    if (!*part || *end) {
        snprintf(err, errlen, "no source position");
        return -1;
    }
    long long at = strtoll(off, &end, 10);
    if (!*off || *end) {
        snprintf(err, errlen, "no source position");
        return -1;
    }
    return pgs_dlq_open(ring, clinic, topic, (int32_t)p, (int64_t)at, m->payload, m->len, out,
                        out_len, err, errlen);
}

/* Judges one matching dead letter and, unless --dry-run, produces it to
 * @p paired once fewer than REPLAY_WINDOW are in flight; a sealed value is
 * decrypted first, and one that does not decrypt is counted, not produced. */
static void replay_one(const pgs_replay_opts_t *o, const PgsKeyring *ring, rd_kafka_t *prod,
                       const char *paired, const rd_kafka_message_t *m, rd_kafka_headers_t *orig,
                       replay_count_t *n)
{
    char topic[256], omitted[32];
    if (!pgs_replay_filter_header(orig, "pgscribe.source.topic", topic, sizeof(topic)) || !*topic) {
        fprintf(stderr, "replay: partition %d offset %lld has no source topic; skipped\n",
                (int)m->partition, (long long)m->offset);
        n->skipped++;
        return;
    }
    if (strcmp(topic, paired) != 0) {
        /* the name is not echoed: it is whatever the writer put there */
        fprintf(stderr,
                "replay: partition %d offset %lld names another source topic than %s; "
                "refused\n",
                (int)m->partition, (long long)m->offset, paired);
        n->refused++;
        return;
    }
    if (pgs_replay_filter_header(orig, "pgscribe.value_omitted_bytes", omitted, sizeof(omitted))) {
        fprintf(stderr,
                "replay: partition %d offset %lld was dead-lettered without its value (%s "
                "bytes); skipped, re-produce it from its source offset\n",
                (int)m->partition, (long long)m->offset, omitted);
        n->skipped++;
        return;
    }
    unsigned char *plain = NULL;
    size_t plain_len = 0;
    if (pgs_replay_filter_header(orig, PGS_DLQ_HDR_ENC, omitted, sizeof(omitted))) {
        char why[256];
        if (replay_open(ring, m, orig, topic, &plain, &plain_len, why, sizeof(why)) != 0) {
            fprintf(stderr, "replay: partition %d offset %lld: cannot decrypt: %s; not replayed\n",
                    (int)m->partition, (long long)m->offset, why);
            n->undecryptable++;
            return;
        }
    }
    if (o->dry_run) {
        free(plain);
        n->replayable++;
        return;
    }
    while (rd_kafka_outq_len(prod) >= REPLAY_WINDOW)
        rd_kafka_poll(prod, 50);
    rd_kafka_headers_t *hdrs = replay_headers(orig);
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(
            prod, RD_KAFKA_V_TOPIC(paired), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(plain ? (void *)plain : m->payload, plain ? plain_len : m->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(prod, 50);
    }
    free(plain); /* copied (RD_KAFKA_MSG_F_COPY) */
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* only handed over on success */
        fprintf(stderr, "replay: partition %d offset %lld: cannot produce to %s: %s\n",
                (int)m->partition, (long long)m->offset, paired, rd_kafka_err2str(err));
        n->failed++;
        return;
    }
    rd_kafka_poll(prod, 0);
}

/* A consumer of every partition of @p topic from its beginning, under a group
 * of its own that commits nothing: each replay reads the whole topic, so no
 * dead letter is ever marked done by a replay that did not deliver it.
 * @returns PGS_EXIT_OK with the partition count in @p nparts. */
static int replay_consumer_new(const pgs_replay_opts_t *o, const pgs_config_t *cfg,
                               const char *topic, rd_kafka_t **out, int *nparts, int *maxpart)
{
    /* the prefetch, not the topic, bounds what is read ahead */
    static const char *const defaults[] = {"queued.max.messages.kbytes", "4096", NULL};
    char errstr[512];
    rd_kafka_conf_t *conf = replay_base_conf(o, cfg, PGS_KAFKA_CONSUMER, defaults);
    if (!conf)
        return PGS_EXIT_CONFIG;
    char group[80];
    snprintf(group, sizeof(group), "pgscribe-replay-%ld-%ld", (long)time(NULL), (long)getpid());
    rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "replay: %s\n", errstr);
        return PGS_EXIT_KAFKA;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, (int)o->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "replay: topic %s: %s\n", topic,
                rd_kafka_err2str(err             ? err
                                 : md->topic_cnt ? md->topics[0].err
                                                 : err));
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return PGS_EXIT_KAFKA;
    }
    *nparts = md->topics[0].partition_cnt;
    *maxpart = 0;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(*nparts);
    for (int i = 0; i < *nparts; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        if (id > *maxpart)
            *maxpart = id;
        rd_kafka_topic_partition_list_add(parts, topic, id)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        fprintf(stderr, "replay: cannot assign %s: %s\n", topic, rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return PGS_EXIT_KAFKA;
    }
    *out = rk;
    return PGS_EXIT_OK;
}

/* Reads @p topic from the beginning to every partition's end and lists,
 * counts or produces each matching dead letter as it is read: memory holds
 * the prefetch and the in-flight window, never the topic. A read that fails
 * part way leaves what was produced replayed (replaying again is harmless:
 * the worker applies each command id once).
 * @returns PGS_EXIT_OK, PGS_EXIT_FAILURE (interrupted, a list write failed)
 *          or PGS_EXIT_KAFKA. */
static int replay_run(const pgs_replay_opts_t *o, const pgs_config_t *cfg, pgs_codec_t *codec,
                      const PgsKeyring *ring, const char *topic, const char *paired,
                      rd_kafka_t *prod, replay_count_t *n)
{
    rd_kafka_t *rk = NULL;
    int nparts = 0, maxpart = 0;
    int rc = replay_consumer_new(o, cfg, topic, &rk, &nparts, &maxpart);
    if (rc != PGS_EXIT_OK)
        return rc;
    unsigned char *at_end = pgs_xalloc_calloc((size_t)maxpart + 1, 1);
    int ended = 0;
    int64_t deadline = replay_now_ms() + o->timeout_ms;
    while (ended < nparts) {
        if (replay_stop) {
            fprintf(stderr, "replay: interrupted before the end of %s\n", topic);
            rc = PGS_EXIT_FAILURE;
            break;
        }
        if (replay_now_ms() > deadline) {
            fprintf(stderr, "replay: timed out before the end of %s (%d of %d partitions read)\n",
                    topic, ended, nparts);
            rc = PGS_EXIT_KAFKA;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (prod)
            rd_kafka_poll(prod, 0);
        if (!m)
            continue;
        deadline = replay_now_ms() + o->timeout_ms;
        int p = m->partition;
        int in_range = p >= 0 && p <= maxpart;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (in_range && !at_end[p]) {
                at_end[p] = 1;
                ended++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            /* a gap in what was read would make the replay incomplete */
            fprintf(stderr, "replay: reading %s: %s\n", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            rc = PGS_EXIT_KAFKA;
            break;
        }
        if (in_range && at_end[p]) { /* written after the end was seen */
            at_end[p] = 0;
            ended--;
        }
        n->read++;
        rd_kafka_headers_t *hdrs = NULL;
        if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = NULL;
        if (pgs_replay_filter_matches(o, codec, m, hdrs)) {
            n->matched++;
            if (o->list) {
                if (pgs_replay_filter_print(m, hdrs) != 0) {
                    fprintf(stderr, "replay: cannot write the list\n");
                    rc = PGS_EXIT_FAILURE;
                    rd_kafka_message_destroy(m);
                    break;
                }
            } else {
                replay_one(o, ring, prod, paired, m, hdrs, n);
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int pgs_cmd_replay(int argc, char **argv)
{
    pgs_replay_opts_t o = {.timeout_ms = 30000};
    /* each repeatable filter holds at most argc values */
    o.classes = pgs_xalloc_calloc((size_t)argc + 1, sizeof(char *));
    o.codes = pgs_xalloc_calloc((size_t)argc + 1, sizeof(char *));
    o.clinics = pgs_xalloc_calloc((size_t)argc + 1, sizeof(char *));
    pgs_config_t *cfg = NULL;
    pgs_codec_t *codec = NULL;
    rd_kafka_t *prod = NULL;
    PgsKeyring *ring = NULL;
    replay_count_t n = {0};
    char errstr[512];

    int rc = replay_parse_args(argc, argv, &o);
    if (rc != PGS_EXIT_OK) {
        if (rc < 0)
            rc = PGS_EXIT_OK; /* --help */
        goto out;
    }
    cfg = pgs_cli_load_config(o.path);
    if (!cfg) {
        rc = PGS_EXIT_CONFIG;
        goto out;
    }
    const char *dlq = o.dlq ? o.dlq : pgs_config_str(cfg, "topic.commands_dlq");
    if (!*dlq) {
        fprintf(stderr, "replay: no dead-letter topic (topic.commands_dlq is empty)\n");
        rc = PGS_EXIT_CONFIG;
        goto out;
    }
    const char *paired = replay_paired_topic(cfg, dlq);
    if (!paired && !o.list) {
        fprintf(stderr,
                "replay: %s is neither topic.commands_dlq nor topic.audit_dlq: no source topic is "
                "paired with it\n",
                dlq);
        rc = PGS_EXIT_CONFIG;
        goto out;
    }
    /* the keyring opens sealed values; --list never reads a value */
    const char *ring_path = pgs_config_str(cfg, "crypto.keyring");
    if (!o.list && *ring_path && pgs_keyring_load(ring_path, &ring, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "replay: crypto.keyring %s: %s\n", ring_path, errstr);
        rc = PGS_EXIT_CONFIG;
        goto out;
    }
    codec = pgs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "replay: %s\n", errstr);
        rc = PGS_EXIT_FAILURE;
        goto out;
    }
    if (!o.list && !o.dry_run && !(prod = replay_producer_new(&o, cfg, &n))) {
        rc = PGS_EXIT_KAFKA;
        goto out;
    }
    signal(SIGINT, replay_on_stop);
    signal(SIGTERM, replay_on_stop);
    rc = replay_run(&o, cfg, codec, ring, dlq, paired, prod, &n);
    if (prod) {
        /* message.timeout.ms guarantees every queued message gets its report */
        while (rd_kafka_outq_len(prod) > 0)
            rd_kafka_poll(prod, 100);
        char fatal[256];
        if (rd_kafka_fatal_error(prod, fatal, sizeof(fatal))) {
            fprintf(stderr, "replay: producer failed: %s\n", fatal);
            if (rc == PGS_EXIT_OK)
                rc = PGS_EXIT_KAFKA;
        }
    }
    if (o.list) {
        if (rc == PGS_EXIT_OK)
            fprintf(stderr, "replay: %lld of %lld dead letter(s) in %s match\n", n.matched, n.read,
                    dlq);
    } else if (o.dry_run) {
        if (rc == PGS_EXIT_OK)
            printf("would replay %lld of %lld matching dead letter(s) (%lld skipped, %lld "
                   "refused, %lld undecryptable; %lld read from %s)\n",
                   n.replayable, n.matched, n.skipped, n.refused, n.undecryptable, n.read, dlq);
        if (rc == PGS_EXIT_OK && n.undecryptable > 0)
            rc = PGS_EXIT_FAILURE;
    } else {
        printf("replayed %lld of %lld matching dead letter(s) (%lld skipped, %lld failed, %lld "
               "refused, %lld undecryptable; %lld read from %s)\n",
               n.delivered, n.matched, n.skipped, n.failed, n.refused, n.undecryptable, n.read,
               dlq);
        if (rc == PGS_EXIT_OK && (n.failed > 0 || n.undecryptable > 0 || replay_stop))
            rc = PGS_EXIT_FAILURE;
    }

out:
    fflush(stdout);
    if (prod)
        rd_kafka_destroy(prod);
    pgs_codec_free(codec);
    pgs_keyring_free(ring);
    pgs_config_free(cfg);
    free(o.classes);
    free(o.codes);
    free(o.clinics);
    return rc;
}
