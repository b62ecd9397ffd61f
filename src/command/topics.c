/* `pgscribe topics`: creates the configured topics (commands, audit, their
 * dead-letter topics, metrics, traces) if they are missing, through the Admin API. */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/kafkaconf.h"
#include "common/topicready.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: pgscribe topics [-c FILE] [-b BROKERS] [-p PARTITIONS] [-r REPLICAS] [--help]\n"
            "Creates the configured topics if they are missing.\n"
            "\n"
            "Creates topic.commands, topic.audit, topic.commands_dlq, topic.audit_dlq,\n"
            "topic.metrics, topic.traces and audit.anchor_topic; existing topics are left\n"
            "as they are.\n"
            "Returns once every partition takes writes.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    configuration file\n"
            "  -b, --brokers LIST   bootstrap servers (default: config, $PGSCRIBE_KAFKA)\n"
            "  -p, --partitions N   partitions of the commands and audit topics (12); the\n"
            "                       dead-letter, metrics and traces topics get at most 3\n"
            "  -r, --replicas N     replication factor (1)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  ok\n"
            "  2  bad arguments\n"
            "  3  invalid configuration\n"
            "  5  Kafka error or time-out\n");
}

int pgs_cmd_topics(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"brokers", required_argument, NULL, 'b'},
                                         {"partitions", required_argument, NULL, 'p'},
                                         {"replicas", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *path = NULL, *brokers = NULL;
    int partitions = 12, replicas = 1, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:b:p:r:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'p':
            partitions = atoi(optarg);
            break;
        case 'r':
            replicas = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (partitions < 1 || replicas < 1) {
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    char errstr[512];
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_ADMIN, NULL, brokers, errstr, sizeof(errstr));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)) : NULL;
    if (!rk) {
        fprintf(stderr, "pgscribe topics: %s\n", errstr);
        pgs_config_free(cfg);
        return PGS_EXIT_KAFKA;
    }
    const char *names[] = {"topic.commands",    "topic.audit",   "topic.commands_dlq",
                           "topic.audit_dlq",   "topic.metrics", "topic.traces",
                           "audit.anchor_topic"};
    enum { NTOPICS = sizeof(names) / sizeof(names[0]) };
    rd_kafka_NewTopic_t *nt[NTOPICS];
    for (int i = 0; i < NTOPICS; i++) {
        /* dead letters, metrics and traces are low volume: fewer partitions */
        int p = i < 2 ? partitions : (partitions < 3 ? partitions : 3);
        nt[i] = rd_kafka_NewTopic_new(pgs_config_str(cfg, names[i]), p, replicas, errstr,
                                      sizeof(errstr));
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, 15000, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, nt, NTOPICS, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = PGS_EXIT_OK;
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "pgscribe topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        rc = PGS_EXIT_KAFKA;
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                printf("created %s\n", rd_kafka_topic_result_name(tr[i]));
            else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                printf("exists  %s\n", rd_kafka_topic_result_name(tr[i]));
            else {
                fprintf(stderr, "pgscribe topics: %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                        rd_kafka_topic_result_error_string(tr[i]));
                rc = PGS_EXIT_KAFKA;
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    /* Created is not writable yet: return once every partition's log is up,
     * so a producer started next does not race the broker. */
    for (int i = 0; rc == PGS_EXIT_OK && i < NTOPICS; i++) {
        if (pgs_topicready_wait(rk, pgs_config_str(cfg, names[i]), 30000, NULL, errstr,
                                sizeof(errstr))) {
            fprintf(stderr, "pgscribe topics: %s\n", errstr);
            rc = PGS_EXIT_KAFKA;
        }
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy_array(nt, NTOPICS);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    pgs_config_free(cfg);
    return rc;
}
