/* pgscribe: Kafka clinic write commands → PostgreSQL, effectively once. */
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

#ifndef PGS_GIT_COMMIT
#define PGS_GIT_COMMIT "unknown"
#endif
#ifndef PGS_AVRO_VERSION
#define PGS_AVRO_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", pgs_cmd_run, "consume commands and apply them to PostgreSQL"},
    {"migrate", pgs_cmd_migrate, "apply the versioned SQL migrations"},
    {"produce", pgs_cmd_produce, "produce commands from JSON lines or a generated load"},
    {"metrics", pgs_cmd_metrics, "read WorkerMetrics records from the metrics topic"},
    {"top", pgs_cmd_top, "live view of the workers and the busiest clinics, like top"},
    {"profile", pgs_cmd_profile, "print a running worker's statement profiles"},
    {"replay", pgs_cmd_replay, "list dead letters, or re-produce them to their source topic"},
    {"prune", pgs_cmd_prune, "delete idempotency records older than a given age"},
    {"resume", pgs_cmd_resume, "rewind the group's offsets to what the database records"},
    {"keys", pgs_cmd_keys, "rotate, shred or list field-encryption keys; protect PHI columns"},
    {"rekey", pgs_cmd_rekey, "re-encrypt rows still on an older key, in batches"},
    {"anonymize", pgs_cmd_anonymize, "copy clinics into another database with PHI masked"},
    {"show", pgs_cmd_show, "print one row with its encrypted columns decrypted (audited)"},
    {"audit", pgs_cmd_audit, "verify the audit trail's hash chains"},
    {"topics", pgs_cmd_topics, "create the configured topics if they are missing"},
    {"broker", pgs_cmd_broker, "start librdkafka's in-memory mock cluster (development)"},
    {"check-config", pgs_cmd_check_config, "validate a configuration file"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: pgscribe <command> [options]\n"
                "Applies Kafka clinic write commands to PostgreSQL, effectively once.\n"
                "\n"
                "Each command has its own --help.\n"
                "\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(fp, "  %-13s %s\n", commands[i].name, commands[i].help);
    fprintf(fp, "  %-13s %s\n", "version", "print the version, commit and library versions");
    fprintf(fp, "\n"
                "options:\n"
                "  -h, --help     show this help\n"
                "\n"
                "exit codes:\n"
                "  0  ok\n"
                "  2  unknown command or bad arguments\n"
                "  otherwise that of the command\n");
}

static void version_usage(FILE *fp)
{
    fprintf(fp, "usage: pgscribe version [--help]\n"
                "Prints the version and commit of pgscribe and of the libraries it runs with.\n"
                "\n"
                "librdkafka, libpq, jansson and OpenSSL report the version loaded at run\n"
                "time; avro-c has no such call, so its line gives the version built against.\n"
                "\n"
                "options:\n"
                "  -h, --help     show this help\n"
                "\n"
                "exit codes:\n"
                "  0  ok\n"
                "  2  bad arguments\n");
}

/* The libraries' own runtime calls where they have one, so the output says
 * what the binary actually loaded, not what it was compiled against. */
static int version_print(int argc, char **argv)
{
    if (argc > 1) {
        int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
        version_usage(help ? stdout : stderr);
        return help ? PGS_EXIT_OK : PGS_EXIT_USAGE;
    }
    int pq = PQlibVersion();
    printf("pgscribe %s (commit %s)\n", PGS_VERSION, PGS_GIT_COMMIT);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("libpq %d.%d\n", pq / 10000, pq % 10000);
    printf("avro-c %s (build time)\n", PGS_AVRO_VERSION);
    printf("jansson %s\n", jansson_version_str());
    printf("openssl %s\n", OpenSSL_version(OPENSSL_VERSION));
    return PGS_EXIT_OK;
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
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return version_print(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "pgscribe: unknown command '%s'\n", cmd);
    usage(stderr);
    return PGS_EXIT_USAGE;
}
