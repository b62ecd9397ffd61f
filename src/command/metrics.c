/* `pgscribe metrics`: reads WorkerMetrics records back from the metrics
 * topic and prints each as one JSON line. */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"
#include "codec/codec.h"
#include "common/config.h"
#include "common/kafkaconf.h"

static volatile sig_atomic_t metrics_stop;

static void on_stop(int sig)
{
    (void)sig;
    metrics_stop = 1;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: pgscribe metrics [-c FILE] [-b BROKERS] [--follow] [--timeout-ms N] [--help]\n"
            "Prints every WorkerMetrics record on the metrics topic as one JSON line.\n"
            "\n"
            "Reads from the beginning and stops at the end of the topic unless --follow.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    configuration file\n"
            "  -b, --brokers LIST   bootstrap servers (default: config, $PGSCRIBE_KAFKA)\n"
            "  -f, --follow         keep waiting for new records\n"
            "      --timeout-ms N   give up after N ms without reaching the end (30000)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  ok\n"
            "  1  runtime failure\n"
            "  2  bad arguments\n"
            "  3  invalid configuration\n"
            "  5  Kafka error or time-out\n");
}

int pgs_cmd_metrics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"brokers", required_argument, NULL, 'b'},
        {"follow", no_argument, NULL, 'f'},       {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {0}};
    const char *path = NULL, *brokers = NULL;
    int follow = 0;
    long timeout_ms = 30000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:b:fh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'f':
            follow = 1;
            break;
        case 't':
            timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    char errstr[512];
    pgs_codec_t *codec = pgs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "pgscribe metrics: %s\n", errstr);
        pgs_config_free(cfg);
        return PGS_EXIT_FAILURE;
    }
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, NULL, brokers, errstr, sizeof(errstr));
    rd_kafka_t *rk = NULL;
    if (conf) {
        /* assign-only reader: the group id is never used to commit */
        char group[64];
        snprintf(group, sizeof(group), "pgscribe-metrics-reader-%ld", (long)time(NULL));
        rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    }
    if (!rk) {
        fprintf(stderr, "pgscribe metrics: %s\n", errstr);
        pgs_codec_free(codec);
        pgs_config_free(cfg);
        return PGS_EXIT_KAFKA;
    }
    const char *topic = pgs_config_str(cfg, "topic.metrics");
    /* assign every partition from the beginning: no group state is needed */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int rc = PGS_EXIT_OK;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "pgscribe metrics: topic %s not found\n", topic);
        rc = PGS_EXIT_KAFKA;
        goto out;
    }
    int nparts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    int eofs = 0;
    long waited = 0;
    while (!metrics_stop && (follow || eofs < nparts)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            waited += 100;
            if (!follow && waited > timeout_ms) {
                fprintf(stderr, "pgscribe metrics: timed out before the end of %s\n", topic);
                rc = PGS_EXIT_KAFKA;
                break;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "pgscribe metrics: %s\n", rd_kafka_message_errstr(m));
        } else {
            char *json = NULL;
            if (pgs_codec_metrics_to_json(codec, m->payload, m->len, &json, errstr,
                                          sizeof(errstr)) == PGS_OK) {
                printf("%s\n", json);
                fflush(stdout);
                free(json);
            } else {
                fprintf(stderr, "pgscribe metrics: offset %lld: %s\n", (long long)m->offset,
                        errstr);
            }
        }
        rd_kafka_message_destroy(m);
    }
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    pgs_codec_free(codec);
    pgs_config_free(cfg);
    return rc;
}
