/* `pgscribe resume --from-database`: compares, for each partition of the
 * commands and audit topics, the consumer group's committed offset with the
 * highest offset the database records, and (without --dry-run, workers
 * stopped) commits the rewound offsets for the group. A worker does the same
 * check by itself on each assignment (src/run/rewind.c); this is the
 * runbook's way to see and settle it before the workers start. */
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/kafkaconf.h"
#include "common/topicready.h"
#include "run/rewind.h"

#define RESUME_TIMEOUT_MS 15000

static void usage(FILE *out)
{
    fputs("usage: pgscribe resume --from-database [--dry-run] [-c FILE] [--help]\n"
          "Rewinds the consumer group's committed offsets to what the database records.\n"
          "\n"
          "For each partition of topic.commands and topic.audit, compares the group's\n"
          "committed offset with the highest offset the database records as applied\n"
          "(pgscribe.applied_commands, audit.events) and, when the database ends before\n"
          "it (a restore, a promoted standby), commits that offset + 1 for the group, so\n"
          "the forgotten commands are applied again. Never moves an offset forward.\n"
          "Every worker of the group must be stopped.\n"
          "\n"
          "options:\n"
          "  --from-database      take the database's record as the truth (required)\n"
          "  --dry-run            print what would be rewound, commit nothing\n"
          "  -c, --config FILE    configuration file (pg.conninfo, consumer.group, topics)\n"
          "  -h, --help           show this help\n"
          "\n"
          "exit codes:\n"
          "  0  done (or nothing to do)\n"
          "  1  the group has members, or the commit failed\n"
          "  2  bad arguments\n"
          "  3  invalid configuration\n"
          "  4  database unreachable or not migrated\n"
          "  5  Kafka error or time-out\n",
          out);
}

/* @returns the number of members of @p group (0 when it is unknown to the
 *          coordinator or empty), or -1 when the coordinator did not answer. */
static int group_members(rd_kafka_t *rk, const char *group, char *state, size_t state_size)
{
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t err = rd_kafka_list_groups(rk, group, &gl, RESUME_TIMEOUT_MS);
    if (err)
        return -1;
    int n = 0;
    for (int i = 0; i < gl->group_cnt; i++) {
        if (strcmp(gl->groups[i].group, group) != 0)
            continue;
        n += gl->groups[i].member_cnt;
        snprintf(state, state_size, "%s", gl->groups[i].state ? gl->groups[i].state : "");
    }
    rd_kafka_group_list_destroy(gl);
    return n;
}

static const char *action_of(const pgs_rewind_row_t *r, char *buf, size_t size)
{
    if (r->target >= 0)
        snprintf(buf, size, "rewind to %" PRId64, r->target);
    else if (r->committed < 0)
        snprintf(buf, size, "keep (nothing committed)");
    else if (r->recorded < 0)
        snprintf(buf, size, "keep (nothing recorded)");
    else
        snprintf(buf, size, "keep");
    return buf;
}

static int resume(pgs_config_t *cfg, int dry_run)
{
    char errstr[512];
    PGconn *pg = pgs_rewind_connect(pgs_config_str(cfg, "pg.conninfo"), errstr, sizeof(errstr));
    pgs_rewind_identity_t id;
    if (!pg || pgs_rewind_identity(pg, &id) != 0) {
        fprintf(stderr, "pgscribe resume: %s\n",
                pg ? "pgscribe.db_identity() failed: are the migrations applied?" : errstr);
        PQfinish(pg);
        return PGS_EXIT_DATABASE;
    }
    const char *group = pgs_config_str(cfg, "consumer.group");
    rd_kafka_conf_t *conf =
        pgs_kafkaconf_new(cfg, PGS_KAFKA_CONSUMER, NULL, NULL, errstr, sizeof(errstr));
    if (conf && (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
                 rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)) : NULL;
    if (!rk) {
        fprintf(stderr, "pgscribe resume: %s\n", errstr);
        PQfinish(pg);
        return PGS_EXIT_KAFKA;
    }
    int rc = PGS_EXIT_OK;
    char state[64] = "";
    int members = group_members(rk, group, state, sizeof(state));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(32);
    pgs_rewind_row_t *rows = NULL;
    if (members < 0) {
        fprintf(stderr, "pgscribe resume: the group coordinator of '%s' did not answer\n", group);
        rc = PGS_EXIT_KAFKA;
        goto out;
    }
    if (members > 0 && !dry_run) {
        fprintf(stderr,
                "pgscribe resume: consumer group '%s' has %d member(s) (state %s): stop every "
                "worker of the group first; nothing was changed\n",
                group, members, state);
        rc = PGS_EXIT_FAILURE;
        goto out;
    }
    const char *topics[] = {pgs_config_str(cfg, "topic.commands"),
                            pgs_config_str(cfg, "topic.audit")};
    for (int t = 0; t < 2; t++) {
        int cnt = 0;
        if (pgs_topicready_wait(rk, topics[t], RESUME_TIMEOUT_MS, &cnt, errstr, sizeof(errstr))) {
            fprintf(stderr, "pgscribe resume: %s\n", errstr);
            rc = PGS_EXIT_KAFKA;
            goto out;
        }
        for (int p = 0; p < cnt; p++)
            rd_kafka_topic_partition_list_add(parts, topics[t], p);
    }
    rows = calloc((size_t)parts->cnt + 1, sizeof(*rows));
    if (!rows ||
        pgs_rewind_plan(rk, pg, parts, RESUME_TIMEOUT_MS, rows, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "pgscribe resume: %s\n", rows ? errstr : "out of memory");
        rc = PGS_EXIT_KAFKA;
        goto out;
    }
    printf("database system_identifier=%s timeline=%d group=%s%s\n", id.system_identifier,
           id.timeline, group, dry_run ? " (dry run)" : "");
    printf("%-28s %9s %12s %12s  %s\n", "topic", "partition", "committed", "database", "action");
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(parts->cnt + 1);
    for (int i = 0; i < parts->cnt; i++) {
        char action[64];
        printf("%-28s %9" PRId32 " %12" PRId64 " %12" PRId64 "  %s\n", rows[i].topic,
               rows[i].partition, rows[i].committed, rows[i].recorded,
               action_of(&rows[i], action, sizeof(action)));
        if (rows[i].target >= 0)
            rd_kafka_topic_partition_list_add(commit, rows[i].topic, rows[i].partition)->offset =
                rows[i].target;
    }
    if (commit->cnt == 0) {
        printf("nothing to rewind\n");
    } else if (dry_run) {
        printf("dry run: %d partition(s) would be rewound, nothing committed\n", commit->cnt);
    } else {
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, commit, 0);
        for (int i = 0; !err && i < commit->cnt; i++)
            err = commit->elems[i].err;
        if (err) {
            fprintf(stderr, "pgscribe resume: commit failed: %s\n", rd_kafka_err2str(err));
            rc = PGS_EXIT_FAILURE;
        } else {
            printf("committed %d rewound offset(s) for group %s\n", commit->cnt, group);
        }
    }
    rd_kafka_topic_partition_list_destroy(commit);
out:
    free(rows);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    PQfinish(pg);
    return rc;
}

int pgs_cmd_resume(int argc, char **argv)
{
    static const struct option opts[] = {{"from-database", no_argument, NULL, 'f'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *path = NULL;
    int from_db = 0, dry_run = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            from_db = 1;
            break;
        case 'n':
            dry_run = 1;
            break;
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
    if (optind < argc || !from_db) {
        fprintf(stderr, "pgscribe resume: %s\n",
                from_db ? "unexpected argument" : "--from-database is required");
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    int rc = resume(cfg, dry_run);
    pgs_config_free(cfg);
    return rc;
}
