/* pgscribe: Kafka clinic write commands → PostgreSQL, effectively once. */
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", pgs_cmd_run, "consume commands and apply them to PostgreSQL"},
    {"migrate", pgs_cmd_migrate, "apply the versioned SQL migrations"},
    {"produce", pgs_cmd_produce, "produce commands from JSON lines or a generated load"},
    {"metrics", pgs_cmd_metrics, "read WorkerMetrics records from the metrics topic"},
    {"replay", pgs_cmd_replay, "list dead letters, or re-produce them to their source topic"},
    {"prune", pgs_cmd_prune, "delete idempotency records older than a given age"},
    {"topics", pgs_cmd_topics, "create the configured topics if they are missing"},
    {"broker", pgs_cmd_broker, "start librdkafka's in-memory mock cluster (development)"},
    {"check-config", pgs_cmd_check_config, "validate a configuration file"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "Usage: pgscribe <command> [options]   (pgscribe <command> --help)\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(fp, "  %-13s %s\n", commands[i].name, commands[i].help);
    fprintf(fp, "  %-13s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return PGS_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("pgscribe %s\n", PGS_VERSION);
        return PGS_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "pgscribe: unknown command '%s'\n", cmd);
    usage(stderr);
    return PGS_EXIT_USAGE;
}
