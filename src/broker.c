/* `pgscribe broker`: librdkafka's in-memory mock cluster as a development
 * broker with pgscribe's default topics; messages die with the process. */
#include "pgscribe/cli.h"

#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_topics[] = {
    "clinic.commands",  "clinic.audit",     "clinic.commands.dlq",
    "clinic.audit.dlq", "pgscribe.metrics",
};

static void usage(FILE *out)
{
    fprintf(out, "usage: pgscribe broker [--brokers N] [--partitions P] [--help]\n"
                 "\n"
                 "Runs librdkafka's mock cluster in this process: an in-memory Kafka for\n"
                 "development and fault injection, NOT a real broker. Messages are lost\n"
                 "when it exits. Creates clinic.commands, clinic.audit, clinic.commands.dlq,\n"
                 "clinic.audit.dlq and pgscribe.metrics, then prints one line\n"
                 "`bootstrap=<host:port,...>` on stdout and runs until SIGINT or SIGTERM.\n"
                 "\n"
                 "  --brokers N     brokers in the mock cluster (1..16, default 1)\n"
                 "  --partitions P  partitions of each default topic (1..1024, default 12)\n");
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

int pgs_cmd_broker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"partitions", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int brokers = 1, partitions = 12, opt, sig, rc = PGS_EXIT_KAFKA;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    sigset_t stop_signals, old_mask;

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

    /* Blocked before librdkafka starts its threads, which inherit the mask:
     * the signals then reach only the sigwait() below. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);

    conf = rd_kafka_conf_new();
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

    if (sigwait(&stop_signals, &sig) != 0) {
        fprintf(stderr, "pgscribe broker: sigwait failed\n");
        goto out;
    }
    fprintf(stderr, "pgscribe broker: %s received, shutting down\n", strsignal(sig));
    rc = PGS_EXIT_OK;

out:
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}
