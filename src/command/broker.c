/* `pgscribe broker`: librdkafka's in-memory mock cluster as a development
 * broker with pgscribe's default topics, and a control channel (FIFO, file or
 * stdin) through which tests inject faults while it runs; messages die with
 * the process. */
#include "command/broker.h"
#include "common/cli.h"
#include "common/kafkaconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const default_topics[] = {
    "clinic.commands",  "clinic.audit",     "clinic.commands.dlq",
    "clinic.audit.dlq", "pgscribe.metrics",
};

/* librdkafka's public header does not export the protocol's ApiKeys. */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},      {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13}, {"SyncGroup", 14},       {"InitProducerId", 22},
};

/* Kafka's current names where librdkafka 2.0.2 still uses the old ones. */
static const struct {
    const char *name;
    rd_kafka_resp_err_t err;
} err_aliases[] = {
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
    {"GROUP_COORDINATOR_NOT_AVAILABLE", RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    {"NOT_COORDINATOR_FOR_GROUP", RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
    {"GROUP_LOAD_IN_PROGRESS", RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe broker [--brokers N] [--partitions P] [--control FILE] [--stdin]\n"
            "                       [--help]\n"
            "Runs librdkafka's in-memory mock cluster, for development and fault injection.\n"
            "\n"
            "It is NOT a real broker: messages are lost when it exits. Creates\n"
            "clinic.commands, clinic.audit, clinic.commands.dlq, clinic.audit.dlq and\n"
            "pgscribe.metrics, then prints one line `bootstrap=<host:port,...>` on stdout\n"
            "and runs until SIGINT or SIGTERM.\n"
            "\n"
            "options:\n"
            "  --brokers N     brokers in the mock cluster (1..16, default 1), ids 1..N\n"
            "  --partitions P  partitions of each default topic (1..1024, default 12)\n"
            "  --control FILE  read commands from FILE: a FIFO (created if missing,\n"
            "                  reopened after each writer closes) or a regular file\n"
            "                  (followed as it grows)\n"
            "  --stdin         also read commands from stdin\n"
            "  -h, --help      show this help\n"
            "\n"
            "commands, one per line; each is answered on stderr with\n"
            "`pgscribe broker: ok <command>` or `pgscribe broker: error <why>`:\n"
            "  topic NAME PARTITIONS      create a topic (replication min(brokers, 3))\n"
            "  down BROKER_ID             disconnect a broker, refuse new connections\n"
            "  up BROKER_ID               accept connections again\n"
            "  errors API COUNT ERRNAME [BROKER_ID]\n"
            "                             fail the next COUNT requests of API with ERRNAME\n"
            "                             (on any broker, or only on BROKER_ID)\n"
            "  clear API                  drop the cluster-wide errors still pushed for API\n"
            "  rtt BROKER_ID MS           delay a broker's responses by MS\n"
            "  leader TOPIC PARTITION BROKER_ID\n"
            "                             move a partition's leader (-1: leaderless)\n"
            "  pending BROKER_ID API      answer `ok ...: N`, the errors BROKER_ID still\n"
            "                             holds for API (pushed with BROKER_ID)\n"
            "In down, up and rtt, BROKER_ID -1 means every broker. API: Produce, Fetch,\n"
            "ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup,\n"
            "Heartbeat, LeaveGroup, SyncGroup, InitProducerId. ERRNAME: a Kafka error\n"
            "name such as NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_COORDINATOR,\n"
            "COORDINATOR_NOT_AVAILABLE, or _TRANSPORT to drop the connection.\n"
            "\n"
            "exit codes:\n"
            "  0  stopped by SIGINT or SIGTERM\n"
            "  1  runtime failure\n"
            "  2  bad arguments\n"
            "  5  the mock cluster could not be created\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int api_key_lookup(const char *name, int16_t *key)
{
    int v;

    for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
        if (strcasecmp(name, api_keys[i].name) == 0) {
            *key = api_keys[i].key;
            return 0;
        }
    }
    if (parse_int(name, 0, 32767, &v) == 0) {
        *key = (int16_t)v;
        return 0;
    }
    return -1;
}

static int err_lookup(const char *name, rd_kafka_resp_err_t *err)
{
    const struct rd_kafka_err_desc *descs;
    size_t n;
    int code;

    if (strncasecmp(name, "RD_KAFKA_RESP_ERR_", 18) == 0)
        name += 18;
    for (size_t i = 0; i < sizeof(err_aliases) / sizeof(err_aliases[0]); i++) {
        if (strcasecmp(name, err_aliases[i].name) == 0) {
            *err = err_aliases[i].err;
            return 0;
        }
    }
    /* A number must still be a code librdkafka knows, or the mock would send
     * the client something it cannot interpret. */
    int numeric = parse_int(name, -32768, 32767, &code) == 0;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (!descs[i].name || descs[i].code == RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        if (numeric ? (int)descs[i].code == code : strcasecmp(name, descs[i].name) == 0) {
            *err = descs[i].code;
            return 0;
        }
    }
    return -1;
}

int pgs_broker_cmd_parse(const char *line, pgs_broker_cmd_t *cmd, char *errstr, size_t errstr_size)
{
    char buf[512], *save = NULL, *w[6];
    int nw = 0, v;

    if (strlen(line) >= sizeof(buf)) {
        snprintf(errstr, errstr_size, "line longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    strcpy(buf, line);
    for (char *t = strtok_r(buf, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (nw == 0 && t[0] == '#')
            break;
        if (nw == 6) {
            snprintf(errstr, errstr_size, "too many words in command %s", w[0]);
            return -1;
        }
        w[nw++] = t;
    }
    if (nw == 0)
        return 1;
    memset(cmd, 0, sizeof(*cmd));

#define PGS_WANT_WORDS(n, form)                                                                    \
    if (nw != (n)) {                                                                               \
        snprintf(errstr, errstr_size, "usage: %s", form);                                          \
        return -1;                                                                                 \
    }

    if (strcmp(w[0], "topic") == 0) {
        PGS_WANT_WORDS(3, "topic NAME PARTITIONS");
        if (strlen(w[1]) > PGS_BROKER_TOPIC_MAX) {
            snprintf(errstr, errstr_size, "topic name longer than %d", PGS_BROKER_TOPIC_MAX);
            return -1;
        }
        if (parse_int(w[2], 1, 10000, &cmd->partitions) != 0) {
            snprintf(errstr, errstr_size, "topic: PARTITIONS must be 1..10000");
            return -1;
        }
        cmd->kind = PGS_BROKER_CMD_TOPIC;
        strcpy(cmd->topic, w[1]);
    } else if (strcmp(w[0], "down") == 0 || strcmp(w[0], "up") == 0) {
        int down = w[0][0] == 'd';
        PGS_WANT_WORDS(2, down ? "down BROKER_ID" : "up BROKER_ID");
        if (parse_int(w[1], -1, INT32_MAX, &v) != 0) {
            snprintf(errstr, errstr_size, "%s: BROKER_ID must be a broker id or -1", w[0]);
            return -1;
        }
        cmd->kind = down ? PGS_BROKER_CMD_DOWN : PGS_BROKER_CMD_UP;
        cmd->broker_id = v;
    } else if (strcmp(w[0], "errors") == 0) {
        if (nw != 4 && nw != 5) {
            snprintf(errstr, errstr_size, "usage: errors API COUNT ERRNAME [BROKER_ID]");
            return -1;
        }
        if (api_key_lookup(w[1], &cmd->api_key) != 0) {
            snprintf(errstr, errstr_size, "errors: unknown API %s", w[1]);
            return -1;
        }
        if (parse_int(w[2], 1, PGS_BROKER_ERRORS_MAX, &cmd->count) != 0) {
            snprintf(errstr, errstr_size, "errors: COUNT must be 1..%d", PGS_BROKER_ERRORS_MAX);
            return -1;
        }
        if (err_lookup(w[3], &cmd->err) != 0) {
            snprintf(errstr, errstr_size, "errors: unknown error name %s", w[3]);
            return -1;
        }
        cmd->broker_id = -1;
        if (nw == 5 && parse_int(w[4], 1, INT32_MAX, &v) != 0) {
            snprintf(errstr, errstr_size, "errors: BROKER_ID must be a broker id");
            return -1;
        }
        if (nw == 5)
            cmd->broker_id = v;
        cmd->kind = PGS_BROKER_CMD_ERRORS;
    } else if (strcmp(w[0], "clear") == 0) {
        PGS_WANT_WORDS(2, "clear API");
        if (api_key_lookup(w[1], &cmd->api_key) != 0) {
            snprintf(errstr, errstr_size, "clear: unknown API %s", w[1]);
            return -1;
        }
        cmd->kind = PGS_BROKER_CMD_CLEAR;
    } else if (strcmp(w[0], "rtt") == 0) {
        PGS_WANT_WORDS(3, "rtt BROKER_ID MS");
        if (parse_int(w[1], -1, INT32_MAX, &v) != 0 ||
            parse_int(w[2], 0, 3600000, &cmd->rtt_ms) != 0) {
            snprintf(errstr, errstr_size, "rtt: BROKER_ID must be an id or -1, MS 0..3600000");
            return -1;
        }
        cmd->kind = PGS_BROKER_CMD_RTT;
        cmd->broker_id = v;
    } else if (strcmp(w[0], "leader") == 0) {
        PGS_WANT_WORDS(4, "leader TOPIC PARTITION BROKER_ID");
        if (strlen(w[1]) > PGS_BROKER_TOPIC_MAX) {
            snprintf(errstr, errstr_size, "topic name longer than %d", PGS_BROKER_TOPIC_MAX);
            return -1;
        }
        if (parse_int(w[2], 0, 9999, &cmd->partitions) != 0 ||
            parse_int(w[3], -1, INT32_MAX, &v) != 0) {
            snprintf(errstr, errstr_size,
                     "leader: PARTITION must be 0..9999, BROKER_ID an id or -1 (none)");
            return -1;
        }
        cmd->kind = PGS_BROKER_CMD_LEADER;
        strcpy(cmd->topic, w[1]);
        cmd->broker_id = v;
    } else if (strcmp(w[0], "pending") == 0) {
        PGS_WANT_WORDS(3, "pending BROKER_ID API");
        if (parse_int(w[1], 1, INT32_MAX, &v) != 0 || api_key_lookup(w[2], &cmd->api_key) != 0) {
            snprintf(errstr, errstr_size, "pending: BROKER_ID must be a broker id, API known");
            return -1;
        }
        cmd->kind = PGS_BROKER_CMD_PENDING;
        cmd->broker_id = v;
    } else {
        snprintf(errstr, errstr_size,
                 "unknown command %s (topic, down, up, errors, clear, rtt, leader, pending)", w[0]);
        return -1;
    }
#undef PGS_WANT_WORDS
    return 0;
}

/* State shared by the control threads; the mutex keeps commands from two
 * sources in one order, as the replies on stderr show them. */
typedef struct {
    rd_kafka_mock_cluster_t *mcluster;
    int brokers;
    pthread_mutex_t lock;
    int stop_fd; /* read end of a pipe written at shutdown */
} broker_ctl_t;

typedef struct {
    broker_ctl_t *ctl;
    const char *path; /* NULL = stdin */
} ctl_source_t;

/* @p extra receives text to append to the reply (the `pending` count). */
static rd_kafka_resp_err_t ctl_execute(broker_ctl_t *ctl, const pgs_broker_cmd_t *cmd, char *extra,
                                       size_t extra_size)
{
    size_t pending = 0;
    rd_kafka_resp_err_t err, errs[256];
    const size_t chunk = sizeof(errs) / sizeof(errs[0]);

    switch (cmd->kind) {
    case PGS_BROKER_CMD_TOPIC:
        /* A replica on each of up to three brokers, so a topic outlives one
         * broker going down. */
        return rd_kafka_mock_topic_create(ctl->mcluster, cmd->topic, cmd->partitions,
                                          ctl->brokers < 3 ? ctl->brokers : 3);
    case PGS_BROKER_CMD_DOWN:
        return rd_kafka_mock_broker_set_down(ctl->mcluster, cmd->broker_id);
    case PGS_BROKER_CMD_UP:
        return rd_kafka_mock_broker_set_up(ctl->mcluster, cmd->broker_id);
    case PGS_BROKER_CMD_ERRORS:
        if (cmd->broker_id >= 0) {
            /* One broker's own stack, consulted before the cluster's: the
             * way to aim errors at the clients of the partitions it leads. */
            for (int i = 0; i < cmd->count; i++) {
                err = rd_kafka_mock_broker_push_request_error_rtts(ctl->mcluster, cmd->broker_id,
                                                                   cmd->api_key, 1, cmd->err, 0);
                if (err)
                    return err;
            }
            return RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        /* Pushed in chunks, which append to the same per-API stack: no
         * allocation however large COUNT is. */
        for (size_t i = 0; i < chunk; i++)
            errs[i] = cmd->err;
        for (size_t left = (size_t)cmd->count; left > 0;) {
            size_t n = left < chunk ? left : chunk;
            rd_kafka_mock_push_request_errors_array(ctl->mcluster, cmd->api_key, n, errs);
            left -= n;
        }
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    case PGS_BROKER_CMD_CLEAR:
        rd_kafka_mock_clear_request_errors(ctl->mcluster, cmd->api_key);
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    case PGS_BROKER_CMD_RTT:
        return rd_kafka_mock_broker_set_rtt(ctl->mcluster, cmd->broker_id, cmd->rtt_ms);
    case PGS_BROKER_CMD_LEADER:
        return rd_kafka_mock_partition_set_leader(ctl->mcluster, cmd->topic, cmd->partitions,
                                                  cmd->broker_id);
    case PGS_BROKER_CMD_PENDING:
        err = rd_kafka_mock_broker_error_stack_cnt(ctl->mcluster, cmd->broker_id, cmd->api_key,
                                                   &pending);
        if (!err)
            snprintf(extra, extra_size, ": %zu", pending);
        return err;
    }
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
}

static void ctl_handle_line(broker_ctl_t *ctl, char *line)
{
    pgs_broker_cmd_t cmd;
    char errstr[256], extra[64] = "";
    size_t len = strlen(line);
    int rc;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    rc = pgs_broker_cmd_parse(line, &cmd, errstr, sizeof(errstr));
    if (rc == 1)
        return;
    if (rc < 0) {
        fprintf(stderr, "pgscribe broker: error %s\n", errstr);
        return;
    }
    pthread_mutex_lock(&ctl->lock);
    rd_kafka_resp_err_t err = ctl_execute(ctl, &cmd, extra, sizeof(extra));
    if (err)
        fprintf(stderr, "pgscribe broker: error %s: %s\n", line, rd_kafka_err2str(err));
    else
        fprintf(stderr, "pgscribe broker: ok %s%s\n", line, extra);
    pthread_mutex_unlock(&ctl->lock);
}

/* Waits until @p fd is readable, @p timeout_ms passes (-1 = forever) or
 * shutdown begins. Returns 1 readable, 0 timeout, -1 shutdown. */
static int ctl_wait(broker_ctl_t *ctl, int fd, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = ctl->stop_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};

    for (;;) {
        int n = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || pfd[0].revents)
            return -1;
        return n > 0 ? 1 : 0;
    }
}

static int ctl_open(const ctl_source_t *src, int *is_fifo)
{
    struct stat st;
    /* Non-blocking so that opening a FIFO with no writer yet cannot hang
     * shutdown; poll() then waits for a writer's data. */
    int fd = open(src->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "pgscribe broker: error cannot open control file %s: %s\n", src->path,
                strerror(errno));
        return -1;
    }
    *is_fifo = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
    return fd;
}

/* One thread per source: reads lines with read(2), not stdio, so shutdown
 * never waits on a FILE lock held by a blocked reader. */
static void *ctl_thread(void *arg)
{
    const ctl_source_t *src = arg;
    broker_ctl_t *ctl = src->ctl;
    char line[1024];
    size_t len = 0;
    int overlong = 0, is_fifo = 0;
    int fd = src->path ? ctl_open(src, &is_fifo) : STDIN_FILENO;

    if (fd < 0)
        return NULL;
    for (;;) {
        if (ctl_wait(ctl, fd, -1) < 0)
            break;
        char chunk[512];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            fprintf(stderr, "pgscribe broker: error reading %s: %s\n",
                    src->path ? src->path : "stdin", strerror(errno));
            break;
        }
        if (n == 0) {
            if (!src->path)
                break; /* stdin closed: the broker keeps running */
            if (is_fifo) {
                /* The writer left: a FIFO keeps reporting EOF until reopened. */
                close(fd);
                fd = ctl_open(src, &is_fifo);
                if (fd < 0)
                    return NULL;
            } else if (ctl_wait(ctl, -1, 100) < 0) {
                break; /* a regular file: follow it as it grows */
            }
            continue;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (len < sizeof(line) - 1)
                    line[len++] = chunk[i];
                else
                    overlong = 1;
                continue;
            }
            line[len] = '\0';
            if (overlong)
                fprintf(stderr, "pgscribe broker: error line longer than %zu bytes\n",
                        sizeof(line) - 1);
            else
                ctl_handle_line(ctl, line);
            len = 0;
            overlong = 0;
        }
    }
    if (src->path)
        close(fd);
    return NULL;
}

int pgs_cmd_broker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"partitions", required_argument, NULL, 'p'},
        {"control", required_argument, NULL, 'C'}, {"stdin", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int brokers = 1, partitions = 12, opt, sig, rc = PGS_EXIT_KAFKA, use_stdin = 0;
    int stop_pipe[2] = {-1, -1}, nthreads = 0;
    const char *control = NULL;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    sigset_t stop_signals, old_mask;
    broker_ctl_t ctl = {.stop_fd = -1};
    ctl_source_t sources[2];
    pthread_t threads[2];

    optind = 1;
    while ((opt = getopt_long(argc, argv, "b:p:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            if (parse_int(optarg, 1, 16, &brokers) != 0) {
                fprintf(stderr, "pgscribe broker: --brokers must be 1..16\n");
                return PGS_EXIT_USAGE;
            }
            break;
        case 'p':
            if (parse_int(optarg, 1, 1024, &partitions) != 0) {
                fprintf(stderr, "pgscribe broker: --partitions must be 1..1024\n");
                return PGS_EXIT_USAGE;
            }
            break;
        case 'C':
            control = optarg;
            break;
        case 'S':
            use_stdin = 1;
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
        fprintf(stderr, "pgscribe broker: unexpected argument %s\n", argv[optind]);
        return PGS_EXIT_USAGE;
    }
    if (control && mkfifo(control, 0600) != 0 && errno != EEXIST) {
        fprintf(stderr, "pgscribe broker: cannot create FIFO %s: %s\n", control, strerror(errno));
        return PGS_EXIT_USAGE;
    }

    /* Blocked before librdkafka starts its threads, which inherit the mask:
     * the signals then reach only the sigwait() below. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

    conf = rd_kafka_conf_new();
    pgs_kafkaconf_route_logs(conf);
    /* This handle only hosts the mock cluster and never connects: its notice
     * about having no bootstrap.servers is noise. */
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "pgscribe broker: %s\n", errstr);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "pgscribe broker: cannot create a Kafka handle: %s\n", errstr);
        goto out;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mcluster) {
        fprintf(stderr, "pgscribe broker: cannot create the mock cluster\n");
        goto out;
    }
    for (size_t i = 0; i < sizeof(default_topics) / sizeof(default_topics[0]); i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, default_topics[i],
                                                             partitions, brokers < 3 ? brokers : 3);
        if (err) {
            fprintf(stderr, "pgscribe broker: creating topic %s: %s\n", default_topics[i],
                    rd_kafka_err2str(err));
            goto out;
        }
    }

    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
    fflush(stdout);
    fprintf(stderr,
            "pgscribe broker: in-memory mock cluster (librdkafka): messages live in this process "
            "only and are lost when it exits — for development and fault injection, not "
            "production (%d broker(s), %d partitions per topic; stop with Ctrl-C)\n",
            brokers, partitions);

    if (control || use_stdin) {
        if (pipe2(stop_pipe, O_CLOEXEC) != 0) {
            fprintf(stderr, "pgscribe broker: pipe: %s\n", strerror(errno));
            rc = PGS_EXIT_FAILURE;
            goto out;
        }
        ctl.mcluster = mcluster;
        ctl.brokers = brokers;
        ctl.stop_fd = stop_pipe[0];
        pthread_mutex_init(&ctl.lock, NULL);
        if (control)
            sources[nthreads++] = (ctl_source_t){.ctl = &ctl, .path = control};
        if (use_stdin)
            sources[nthreads++] = (ctl_source_t){.ctl = &ctl, .path = NULL};
        for (int i = 0; i < nthreads; i++) {
            if (pthread_create(&threads[i], NULL, ctl_thread, &sources[i]) != 0) {
                fprintf(stderr, "pgscribe broker: cannot start a control thread\n");
                nthreads = i;
                rc = PGS_EXIT_FAILURE;
                goto out;
            }
        }
        fprintf(stderr, "pgscribe broker: accepting commands on %s%s%s\n", control ? control : "",
                control && use_stdin ? " and " : "", use_stdin ? "stdin" : "");
    }

    if (sigwait(&stop_signals, &sig) != 0) {
        fprintf(stderr, "pgscribe broker: sigwait failed\n");
        goto out;
    }
    fprintf(stderr, "pgscribe broker: %s received, shutting down\n", strsignal(sig));
    rc = PGS_EXIT_OK;

out:
    /* The control threads use the cluster: they end before it does. */
    if (stop_pipe[1] >= 0 && write(stop_pipe[1], "x", 1) < 0)
        fprintf(stderr, "pgscribe broker: cannot stop the control threads\n");
    for (int i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (ctl.stop_fd >= 0)
        pthread_mutex_destroy(&ctl.lock);
    for (int i = 0; i < 2; i++)
        if (stop_pipe[i] >= 0)
            close(stop_pipe[i]);
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}
