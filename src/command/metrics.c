/* `pgscribe metrics`: reads WorkerMetrics records back from the metrics
 * topic (metricsread.c) and prints each as one JSON line: every record,
 * the newest of each worker (--latest), or new ones as they come (--follow). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/metricsread.h"
#include "common/cli.h"
#include "common/config.h"

static volatile sig_atomic_t metrics_stop;

static void on_stop(int sig)
{
    (void)sig;
    metrics_stop = 1;
}

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: pgscribe metrics [-c FILE] [-b BROKERS] [--latest | --follow [--from-beginning]]\n"
        "                        [--timeout-ms N] [--help]\n"
        "Prints WorkerMetrics records from the metrics topic, one JSON line each.\n"
        "\n"
        "Without options: every record on the topic, from its beginning to its end.\n"
        "--latest: the newest record of each worker (from the last %d records of\n"
        "each partition), then exits. --follow: the records written from now on,\n"
        "until SIGINT/SIGTERM; with --from-beginning, every record first.\n"
        "\n"
        "options:\n"
        "  -c, --config FILE       configuration file\n"
        "  -b, --brokers LIST      bootstrap servers (default: config, $PGSCRIBE_KAFKA)\n"
        "  -l, --latest            the newest record of each worker, then exit\n"
        "  -f, --follow            keep waiting for new records\n"
        "      --from-beginning    with --follow: start at the beginning of the topic\n"
        "      --timeout-ms N      give up after N ms without reaching the end (30000)\n"
        "  -h, --help              show this help\n"
        "\n"
        "exit codes:\n"
        "  0  ok\n"
        "  1  runtime failure\n"
        "  2  bad arguments\n"
        "  3  invalid configuration\n"
        "  5  Kafka error or time-out\n",
        PGS_METRICSREAD_TAIL_RECORDS);
}

/* Every partition read to its end within @p timeout_ms; each record goes
 * to @p each (printed, or kept as its worker's newest). */
static int read_to_end(pgs_metricsread_t *r, long timeout_ms, json_t *newest)
{
    int eofs = 0, nparts = pgs_metricsread_partitions(r);
    long waited = 0;
    while (!metrics_stop && eofs < nparts) {
        char *json = NULL;
        pgs_metricsread_ev_t ev = pgs_metricsread_next(r, 100, &json);
        if (ev == PGS_METRICSREAD_NONE) {
            waited += 100;
            if (waited > timeout_ms) {
                fprintf(stderr, "pgscribe metrics: timed out before the end of the topic\n");
                return PGS_EXIT_KAFKA;
            }
        } else if (ev == PGS_METRICSREAD_EOF) {
            eofs++;
        } else if (newest) {
            json_t *rec = json_loads(json, 0, NULL);
            if (rec)
                pgs_metricsread_keep_newest(newest, rec);
        } else {
            printf("%s\n", json);
            fflush(stdout);
        }
        free(json);
    }
    return PGS_EXIT_OK;
}

static void follow(pgs_metricsread_t *r)
{
    while (!metrics_stop) {
        char *json = NULL;
        if (pgs_metricsread_next(r, 100, &json) == PGS_METRICSREAD_RECORD) {
            printf("%s\n", json);
            fflush(stdout);
        }
        free(json);
    }
}

int pgs_cmd_metrics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"brokers", required_argument, NULL, 'b'},
        {"follow", no_argument, NULL, 'f'},         {"latest", no_argument, NULL, 'l'},
        {"from-beginning", no_argument, NULL, 'B'}, {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},           {0}};
    const char *path = NULL, *brokers = NULL;
    int do_follow = 0, latest = 0, from_beginning = 0;
    long timeout_ms = 30000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:b:flh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'f':
            do_follow = 1;
            break;
        case 'l':
            latest = 1;
            break;
        case 'B':
            from_beginning = 1;
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
    if (optind < argc || (latest && (do_follow || from_beginning)) ||
        (from_beginning && !do_follow)) {
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    pgs_metricsread_from_t from = latest                         ? PGS_METRICSREAD_TAIL
                                  : do_follow && !from_beginning ? PGS_METRICSREAD_END
                                                                 : PGS_METRICSREAD_BEGINNING;
    char errstr[512];
    pgs_metricsread_t *r = pgs_metricsread_open(cfg, brokers, from, errstr, sizeof(errstr));
    pgs_config_free(cfg);
    if (!r) {
        fprintf(stderr, "pgscribe metrics: %s\n", errstr);
        return PGS_EXIT_KAFKA;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    int rc = PGS_EXIT_OK;
    if (do_follow) {
        follow(r);
    } else if (latest) {
        json_t *newest = json_object();
        rc = read_to_end(r, timeout_ms, newest);
        const char *id;
        json_t *rec;
        json_object_foreach(newest, id, rec)
        {
            char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (text)
                printf("%s\n", text);
            free(text);
        }
        json_decref(newest);
    } else {
        rc = read_to_end(r, timeout_ms, NULL);
    }
    pgs_metricsread_close(r);
    return rc;
}
