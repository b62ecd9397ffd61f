/* `pgscribe produce`: writes commands to Kafka, generated (loadgen), read
 * from JSON lines or sent as raw files, or generated audit events, with
 * pacing, progress and a delivery summary. */
#include "common/cli.h"
#include "common/xalloc.h"
#include "codec/codec.h"
#include "common/config.h"
#include "common/kafkaconf.h"
#include "command/loadgen.h"
#include "command/produce_register.h"
#include "common/topicready.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define PRODUCE_FLUSH_MS  60000
#define PRODUCE_READY_MS  30000
#define PRODUCE_BAR_WIDTH 20

static const char *const ct_json = "application/json";
static const char *const ct_avro = "application/vnd.pgscribe.v1+avro";

typedef struct {
    const char *config_path;
    const char *brokers;
    const char *topic;
    const char *input;
    const char *raw_dir;
    const char *encoding;
    const char *emit;
    long long count;
    int clinics;
    uint64_t seed;
    double rate;
    int schema_id;
    int schema_id_set;
    int audit;    /* generated AuditEvents instead of commands */
    int reg;      /* --register: framed with the schema registry's ids */
    int progress; /* -1: only if stderr is a TTY */
} produce_opts_t;

typedef struct {
    produce_opts_t opts;
    rd_kafka_t *rk;
    pgs_codec_t *codec;
    pgs_produce_ids_t ids; /* --register's */
    FILE *emit;
    int json;
    const char *noun; /* what the summary counts */
    double t_start;
    double t_progress;
    long long total; /* -1 when reading input of unknown length */
    long long produced;
    long long delivered; /* delivery counters: written by the delivery report */
    long long failed;    /* callback, which runs inside rd_kafka_poll on this thread */
    long long encode_failed;
    long long ev_dropped;
} produce_t;

static volatile sig_atomic_t produce_stop;

static void produce_on_signal(int sig)
{
    (void)sig;
    produce_stop = 1;
}

static double produce_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void produce_usage(FILE *fp)
{
    fprintf(fp,
            "usage: pgscribe produce [options]\n"
            "Produces commands or audit events to Kafka: generated, from JSON lines, or raw.\n"
            "\n"
            "Writes WriteCommand messages: a generated, deterministic clinic load\n"
            "(default), JSON lines read with --input, or raw files sent with --raw-dir.\n"
            "With --audit, writes generated AuditEvent messages instead.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE     configuration file (kafka.*, topic.commands,\n"
            "                        topic.audit, produce.encoding)\n"
            "  -b, --brokers LIST    bootstrap servers (default: config, else $PGSCRIBE_KAFKA,\n"
            "                        else " PGS_KAFKA_DEFAULT_BROKERS ")\n"
            "  -t, --topic TOPIC     topic (default: topic.commands; with --audit,\n"
            "                        topic.audit)\n"
            "      --audit           generated audit events (Avro schema id 3, or JSON),\n"
            "                        key = clinic_id; takes --count, --clinics, --seed,\n"
            "                        --rate, --encoding, --emit and the progress options\n"
            "      --input FILE      JSON lines of commands to send ('-' = stdin); lines that\n"
            "                        do not decode are reported and skipped\n"
            "      --raw-dir DIR     send each regular file in DIR (by name; hidden files\n"
            "                        skipped) as one message, bytes unchanged: key = file\n"
            "                        name without extension, content-type application/json\n"
            "                        for *.json, else application/vnd.pgscribe.v1+avro\n"
            "                        (for testing how workers treat arbitrary input)\n"
            "      --count N         generated commands or events (default 100000)\n"
            "      --clinics C       clinics clinic-001..clinic-C (default 20)\n"
            "      --seed S          generator seed (default 1)\n"
            "      --rate R          messages per second, 0 = as fast as possible (default 0)\n"
            "      --encoding E      avro or json (default: produce.encoding)\n"
            "      --schema-id N     Avro writer schema, 1 or 2 (default 2); schema 1 has no\n"
            "                        expected_version, which is then left out\n"
            "      --register        register the shipped schemas as <topic>-value in\n"
            "                        schema_registry.url and frame with its ids\n"
            "      --emit FILE       also write each produced command or event as a JSON line\n"
            "      --progress        show a progress bar even if stderr is not a terminal\n"
            "      --no-progress     never show a progress bar\n"
            "  -h, --help            show this help\n"
            "\n"
            "exit codes:\n"
            "  0  every message was delivered\n"
            "  1  a message failed, or an input line was skipped\n"
            "  2  bad arguments\n"
            "  3  invalid configuration\n"
            "  5  Kafka client could not be created\n");
}

static int produce_parse_ll(const char *opt, const char *s, long long min, long long max,
                            long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "produce: %s must be an integer in [%lld, %lld]\n", opt, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* @returns 0 to run, 1 after --help, -1 on a usage error (already reported). */
static int produce_parse_args(int argc, char **argv, produce_opts_t *o)
{
    enum {
        OPT_INPUT = 256,
        OPT_RAW_DIR,
        OPT_COUNT,
        OPT_CLINICS,
        OPT_SEED,
        OPT_RATE,
        OPT_ENCODING,
        OPT_SCHEMA_ID,
        OPT_EMIT,
        OPT_PROGRESS,
        OPT_NO_PROGRESS,
        OPT_AUDIT,
        OPT_REGISTER,
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"input", required_argument, NULL, OPT_INPUT},
        {"raw-dir", required_argument, NULL, OPT_RAW_DIR},
        {"count", required_argument, NULL, OPT_COUNT},
        {"clinics", required_argument, NULL, OPT_CLINICS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"rate", required_argument, NULL, OPT_RATE},
        {"encoding", required_argument, NULL, OPT_ENCODING},
        {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
        {"emit", required_argument, NULL, OPT_EMIT},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"audit", no_argument, NULL, OPT_AUDIT},
        {"register", no_argument, NULL, OPT_REGISTER},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->count = 100000;
    o->clinics = 20;
    o->seed = 1;
    o->schema_id = PGS_SCHEMA_ID_WRITE_COMMAND_V2;
    o->progress = -1;

    long long v;
    char *end;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:b:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'h':
            produce_usage(stdout);
            return 1;
        case OPT_INPUT:
            o->input = optarg;
            break;
        case OPT_RAW_DIR:
            o->raw_dir = optarg;
            break;
        case OPT_COUNT:
            if (produce_parse_ll("--count", optarg, 0, INT64_MAX, &o->count))
                return -1;
            break;
        case OPT_CLINICS:
            if (produce_parse_ll("--clinics", optarg, 1, 999, &v))
                return -1;
            o->clinics = (int)v;
            break;
        case OPT_SEED:
            errno = 0;
            o->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') {
                fprintf(stderr, "produce: --seed must be an unsigned integer\n");
                return -1;
            }
            break;
        case OPT_RATE:
            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o->rate >= 0) || o->rate > 1e9) {
                fprintf(stderr, "produce: --rate must be a number >= 0\n");
                return -1;
            }
            break;
        case OPT_ENCODING:
            o->encoding = optarg;
            break;
        case OPT_SCHEMA_ID:
            if (produce_parse_ll("--schema-id", optarg, 1, 2, &v))
                return -1;
            o->schema_id = (int)v;
            o->schema_id_set = 1;
            break;
        case OPT_EMIT:
            o->emit = optarg;
            break;
        case OPT_PROGRESS:
            o->progress = 1;
            break;
        case OPT_NO_PROGRESS:
            o->progress = 0;
            break;
        case OPT_AUDIT:
            o->audit = 1;
            break;
        case OPT_REGISTER:
            o->reg = 1;
            break;
        default:
            produce_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "produce: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->audit && (o->input || o->raw_dir || o->schema_id_set)) {
        fprintf(stderr, "produce: --audit cannot be combined with --input, --raw-dir or "
                        "--schema-id\n");
        return -1;
    }
    if (o->raw_dir && (o->input || o->emit)) {
        fprintf(stderr, "produce: --raw-dir cannot be combined with --input or --emit\n");
        return -1;
    }
    if (!o->input && !o->raw_dir && o->count == 0) {
        fprintf(stderr, "produce: --count 0 with no --input: nothing to produce\n");
        return -1;
    }
    if (o->encoding && strcmp(o->encoding, "avro") != 0 && strcmp(o->encoding, "json") != 0) {
        fprintf(stderr, "produce: --encoding must be avro or json\n");
        return -1;
    }
    return 0;
}

/* @locality rd_kafka_poll() and rd_kafka_flush() on the main thread. */
static void produce_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    produce_t *p = opaque;
    if (msg->err)
        p->failed++;
    else
        p->delivered++;
}

/* Defaults tuned for throughput with ordering kept per partition
 * (idempotence), then the config's kafka.* keys, then --brokers. */
static rd_kafka_conf_t *produce_conf_new(produce_t *p, const pgs_config_t *cfg, char *errstr,
                                         size_t errstr_size)
{
    static const char *const defaults[] = {"enable.idempotence",
                                           "true",
                                           "acks",
                                           "all",
                                           "linger.ms",
                                           "5",
                                           "batch.num.messages",
                                           "10000",
                                           "compression.type",
                                           "lz4",
                                           "queue.buffering.max.messages",
                                           "500000",
                                           NULL};
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_PRODUCER, defaults, p->opts.brokers, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, produce_on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    return conf;
}

static void produce_progress(produce_t *p, int final)
{
    double now = produce_now();
    if (!p->opts.progress || (!final && now - p->t_progress < 0.1))
        return;
    p->t_progress = now;
    double elapsed = now - p->t_start;
    double rate = elapsed > 0 ? (double)p->produced / elapsed : 0;
    char rbuf[32];
    if (rate >= 1000)
        snprintf(rbuf, sizeof(rbuf), "%.1fk/s", rate / 1000);
    else
        snprintf(rbuf, sizeof(rbuf), "%.0f/s", rate);
    if (p->total > 0) {
        char bar[PRODUCE_BAR_WIDTH + 1];
        int filled = (int)((double)p->produced * PRODUCE_BAR_WIDTH / (double)p->total);
        for (int i = 0; i < PRODUCE_BAR_WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[PRODUCE_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r[%s] %lld/%lld  %s", bar, p->produced, p->total, rbuf);
    } else {
        fprintf(stderr, "\r%lld commands  %s", p->produced, rbuf);
    }
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Spreads commands evenly over time instead of sending a burst each second:
 * command i is due at start + i / rate. */
static void produce_pace(produce_t *p)
{
    if (p->opts.rate <= 0)
        return;
    double due = p->t_start + (double)p->produced / p->opts.rate;
    for (;;) {
        double wait = due - produce_now();
        if (wait <= 0 || produce_stop)
            return;
        if (wait >= 0.001) {
            rd_kafka_poll(p->rk, (int)(wait * 1000));
        } else {
            struct timespec ts = {0, (long)(wait * 1e9)};
            nanosleep(&ts, NULL);
        }
        produce_progress(p, 0);
    }
}

/* Queues @p buf (malloc'd: librdkafka frees it once sent, this on an error).
 * @returns 0, or -1 on a Kafka error that stops production. */
static int produce_send(produce_t *p, const char *key, size_t keylen, char *buf, size_t len,
                        const char *content_type)
{
    rd_kafka_resp_err_t err;
    for (;;) {
        err =
            rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->opts.topic), RD_KAFKA_V_KEY(key, keylen),
                              RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                              RD_KAFKA_V_HEADER("content-type", content_type, -1), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* Deliveries free queue space; serve them and try again. */
        rd_kafka_poll(p->rk, 100);
    }
    if (err) {
        free(buf); /* not handed over on failure */
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        return -1;
    }
    p->produced++;
    return 0;
}

/* @returns 0 when the command is queued (or could not be encoded, which is
 *          counted), -1 on a Kafka error that stops production. */
static int produce_one(produce_t *p, pgs_command_t *cmd)
{
    if (!p->json && p->opts.schema_id == PGS_SCHEMA_ID_WRITE_COMMAND_V1 &&
        cmd->has_expected_version) {
        /* Keeps --emit equal to what the worker will decode. */
        cmd->has_expected_version = 0;
        p->ev_dropped++;
    }
    char *buf = NULL;
    size_t len = 0;
    if (pgs_codec_encode_command(p->codec, cmd, p->json, p->opts.schema_id, &buf, &len) != 0) {
        fprintf(stderr, "produce: command %lld: encoding failed\n", p->produced + 1);
        p->encode_failed++;
        free(buf);
        return 0;
    }
    if (!p->json)
        pgs_produce_reframe(&p->ids, buf, len);
    char keybuf[512];
    char *key = keybuf;
    size_t keylen = pgs_loadgen_message_key(cmd, keybuf, sizeof(keybuf));
    if (keylen >= sizeof(keybuf)) {
        key = pgs_xalloc_malloc(keylen + 1);
        pgs_loadgen_message_key(cmd, key, keylen + 1);
    }

    int rc = produce_send(p, key, keylen, buf, len, p->json ? ct_json : ct_avro);
    if (key != keybuf)
        free(key);
    if (rc)
        return -1;

    if (p->emit) {
        char *json = pgs_codec_json_from_command(cmd);
        if (!json || fprintf(p->emit, "%s\n", json) < 0) {
            fprintf(stderr, "produce: --emit: cannot write command %lld\n", p->produced);
            free(json);
            return -1;
        }
        free(json);
    }
    rd_kafka_poll(p->rk, 0);
    produce_progress(p, 0);
    return 0;
}

/* Key = clinic_id: one clinic's events stay in one partition, in order.
 * @returns 0 when the event is queued (or could not be encoded, which is
 *          counted), -1 on a Kafka error that stops production. */
static int produce_audit_one(produce_t *p, const pgs_audit_event_t *ev)
{
    char *buf = NULL;
    size_t len = 0;
    if (pgs_codec_encode_audit(p->codec, ev, p->json, &buf, &len) != 0) {
        fprintf(stderr, "produce: audit event %lld: encoding failed\n", p->produced + 1);
        p->encode_failed++;
        free(buf);
        return 0;
    }
    if (!p->json)
        pgs_produce_reframe(&p->ids, buf, len);
    if (produce_send(p, ev->clinic_id, strlen(ev->clinic_id), buf, len,
                     p->json ? ct_json : ct_avro))
        return -1;

    if (p->emit) {
        /* Encoded again: the message buffer now belongs to librdkafka. */
        char *json = NULL;
        size_t json_len = 0;
        int rc = pgs_codec_encode_audit(p->codec, ev, 1, &json, &json_len) != 0 ||
                 fwrite(json, 1, json_len, p->emit) != json_len || fputc('\n', p->emit) == EOF;
        free(json);
        if (rc) {
            fprintf(stderr, "produce: --emit: cannot write audit event %lld\n", p->produced);
            return -1;
        }
    }
    rd_kafka_poll(p->rk, 0);
    produce_progress(p, 0);
    return 0;
}

/* @returns the number of lines skipped, or -1 if production stopped. */
static long long produce_from_input(produce_t *p)
{
    FILE *in = strcmp(p->opts.input, "-") == 0 ? stdin : fopen(p->opts.input, "r");
    if (!in) {
        fprintf(stderr, "produce: --input %s: %s\n", p->opts.input, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long long lineno = 0, skipped = 0;
    int rc = 0;
    while (!produce_stop && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strspn(line, " \t") == (size_t)n)
            continue; /* blank lines carry no command */
        pgs_command_t *cmd = NULL;
        char errstr[256];
        pgs_err_t err =
            pgs_codec_decode_command(p->codec, line, (size_t)n, 1, &cmd, errstr, sizeof(errstr));
        if (err != PGS_OK) {
            /* The code only: errstr names fields, but a line may hold PHI. */
            fprintf(stderr, "%sline %lld: %s\n", p->opts.progress ? "\n" : "", lineno,
                    pgs_error_code(err));
            skipped++;
            continue;
        }
        produce_pace(p);
        rc = produce_one(p, cmd);
        pgs_command_free(cmd);
        if (rc)
            break;
    }
    if (ferror(in)) {
        fprintf(stderr, "produce: --input %s: read error\n", p->opts.input);
        rc = -1;
    }
    free(line);
    if (in != stdin)
        fclose(in);
    return rc ? -1 : skipped;
}

static int produce_name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name); /* bytewise: the same order in any locale */
}

/* Reads all of @p path into a malloc'd buffer. @returns 0, or -1 (reported). */
static int produce_read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "produce: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    *len = (size_t)st.st_size;
    *buf = pgs_xalloc_malloc(*len);
    int rc = fread(*buf, 1, *len, f) == *len ? 0 : -1;
    if (rc) {
        fprintf(stderr, "produce: %s: short read\n", path);
        free(*buf);
    }
    fclose(f);
    return rc;
}

/* Sends each regular file of --raw-dir unchanged: the bytes need not be a
 * command at all, which is the point. @returns 0, or -1 if production stopped. */
static int produce_raw_dir(produce_t *p)
{
    struct dirent **names = NULL;
    int n = scandir(p->opts.raw_dir, &names, NULL, produce_name_cmp);
    if (n < 0) {
        fprintf(stderr, "produce: --raw-dir %s: %s\n", p->opts.raw_dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[4096];
        struct stat st;
        if (rc || produce_stop || name[0] == '.' ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", p->opts.raw_dir, name) >= sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(names[i]);
            continue;
        }
        char *buf;
        size_t len;
        if (produce_read_file(path, &buf, &len) != 0) {
            rc = -1;
        } else {
            const char *dot = strrchr(name, '.');
            size_t keylen = dot ? (size_t)(dot - name) : strlen(name);
            int json = dot && strcmp(dot, ".json") == 0;
            produce_pace(p);
            rc = produce_send(p, name, keylen, buf, len, json ? ct_json : ct_avro);
            rd_kafka_poll(p->rk, 0);
            produce_progress(p, 0);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Generated load: commands, or audit events with @p audit (the generator
 * keeps the two in separate random streams). */
static int produce_generated(produce_t *p, int audit)
{
    pgs_loadgen_t *lg = pgs_loadgen_new(p->opts.seed, p->opts.clinics, NULL);
    if (!lg) {
        fprintf(stderr, "produce: cannot create the load generator\n");
        return -1;
    }
    int rc = 0;
    while (!produce_stop && p->produced < p->opts.count && rc == 0) {
        produce_pace(p);
        if (audit) {
            pgs_audit_event_t *ev = pgs_loadgen_next_audit(lg);
            rc = produce_audit_one(p, ev);
            pgs_command_audit_free(ev);
        } else {
            pgs_command_t *cmd = pgs_loadgen_next(lg);
            rc = produce_one(p, cmd);
            pgs_command_free(cmd);
        }
    }
    pgs_loadgen_free(lg);
    return rc;
}

int pgs_cmd_produce(int argc, char **argv)
{
    produce_t p;
    memset(&p, 0, sizeof(p));
    int rc = produce_parse_args(argc, argv, &p.opts);
    if (rc)
        return rc > 0 ? PGS_EXIT_OK : PGS_EXIT_USAGE;

    int exit_code = PGS_EXIT_FAILURE;
    char errstr[512];
    struct sigaction sa, old_int, old_term;
    int signals_set = 0;
    pgs_config_t *cfg = pgs_cli_load_config(p.opts.config_path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    if (!p.opts.topic)
        p.opts.topic = pgs_config_str(cfg, p.opts.audit ? "topic.audit" : "topic.commands");
    p.noun = p.opts.audit ? "audit events" : "commands";
    if (!p.opts.encoding)
        p.opts.encoding = pgs_config_str(cfg, "produce.encoding");
    p.json = strcmp(p.opts.encoding, "json") == 0;
    if (p.opts.progress < 0)
        p.opts.progress = isatty(STDERR_FILENO);
    p.total = p.opts.input || p.opts.raw_dir ? -1 : p.opts.count;

    p.codec = pgs_codec_new(errstr, sizeof(errstr));
    if (!p.codec) {
        fprintf(stderr, "produce: codec: %s\n", errstr);
        goto out;
    }
    if (p.opts.reg && pgs_produce_register(cfg, p.opts.topic, p.opts.audit, &p.ids))
        goto out;
    rd_kafka_conf_t *conf = produce_conf_new(&p, cfg, errstr, sizeof(errstr));
    if (!conf) {
        fprintf(stderr, "produce: %s\n", errstr);
        exit_code = PGS_EXIT_CONFIG;
        goto out;
    }
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p.rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "produce: kafka: %s\n", errstr);
        exit_code = PGS_EXIT_KAFKA;
        goto out;
    }
    /* Not before every partition takes writes (see topicready.h). */
    if (pgs_topicready_wait(p.rk, p.opts.topic, PRODUCE_READY_MS, NULL, errstr, sizeof(errstr))) {
        fprintf(stderr, "produce: %s\n", errstr);
        exit_code = PGS_EXIT_KAFKA;
        goto out;
    }
    if (p.opts.emit) {
        p.emit = strcmp(p.opts.emit, "-") == 0 ? stdout : fopen(p.opts.emit, "w");
        if (!p.emit) {
            fprintf(stderr, "produce: --emit %s: %s\n", p.opts.emit, strerror(errno));
            goto out;
        }
    }

    /* Ctrl-C stops producing; what is queued is still flushed and counted. */
    produce_stop = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = produce_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    signals_set = 1;

    p.t_start = produce_now();
    long long skipped = 0;
    int stopped;
    if (p.opts.raw_dir) {
        stopped = produce_raw_dir(&p) != 0;
    } else if (p.opts.input) {
        skipped = produce_from_input(&p);
        stopped = skipped < 0;
    } else if (p.opts.audit) {
        stopped = produce_generated(&p, 1) != 0;
    } else {
        stopped = produce_generated(&p, 0) != 0;
    }
    produce_progress(&p, 1);

    rd_kafka_flush(p.rk, PRODUCE_FLUSH_MS);
    int undelivered = rd_kafka_outq_len(p.rk);
    double elapsed = produce_now() - p.t_start;
    fprintf(stderr, "produced %lld %s to %s in %.2f s (%.0f/s), %lld failed\n", p.delivered, p.noun,
            p.opts.topic, elapsed, elapsed > 0 ? (double)p.delivered / elapsed : 0.0,
            p.failed + p.encode_failed);
    if (undelivered > 0)
        fprintf(stderr, "produce: %d messages undelivered after %d s\n", undelivered,
                PRODUCE_FLUSH_MS / 1000);
    if (skipped > 0)
        fprintf(stderr, "produce: %lld input lines skipped\n", skipped);
    if (p.ev_dropped > 0)
        fprintf(stderr, "produce: schema id 1 has no expected_version: left out of %lld commands\n",
                p.ev_dropped);
    if (produce_stop)
        fprintf(stderr, "produce: interrupted\n");
    if (!stopped && !produce_stop && p.failed == 0 && p.encode_failed == 0 && undelivered == 0 &&
        skipped == 0 && p.delivered == p.produced)
        exit_code = PGS_EXIT_OK;

out:
    if (signals_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (p.emit && p.emit != stdout && fclose(p.emit) != 0) {
        fprintf(stderr, "produce: --emit %s: %s\n", p.opts.emit, strerror(errno));
        exit_code = PGS_EXIT_FAILURE;
    } else if (p.emit == stdout) {
        fflush(stdout);
    }
    if (p.rk)
        rd_kafka_destroy(p.rk);
    pgs_codec_free(p.codec);
    pgs_config_free(cfg);
    return exit_code;
}
