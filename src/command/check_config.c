/* `pgscribe check-config`: validates a configuration file and prints it masked. */
#include "common/cli.h"
#include "common/config.h"
#include "common/kafkaconf.h"
#include "policy/ratelimit.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_DEFAULT_CONFIG "config/pgscribe.conf"

static void cli_check_config_usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: pgscribe check-config [-c FILE] [--print] [--help-config] [--markdown] [--help]\n"
        "Validates a configuration file, or describes every setting.\n"
        "\n"
        "Every kafka.* key is handed to librdkafka, so an unknown property or a bad\n"
        "value fails here rather than at start.\n"
        "\n"
        "options:\n"
        "  -c, --config FILE  file to check (default: $PGSCRIBE_CONFIG, else\n"
        "                     " CLI_DEFAULT_CONFIG " if it exists)\n"
        "  -p, --print        print the effective values, secrets masked\n"
        "      --help-config  describe every setting\n"
        "      --markdown     print the settings reference as Markdown\n"
        "                     (docs/config-reference.md)\n"
        "  -h, --help         show this help\n"
        "\n"
        "exit codes:\n"
        "  0  valid\n"
        "  2  bad arguments\n"
        "  3  invalid configuration\n");
}

/* Hands the kafka.* keys to librdkafka as the consumer and the producer
 * would, so an unknown property or a bad value fails here and not at start.
 * @returns the number of errors, each printed on stderr. */
/* limits.overrides is parsed as the worker would: a bad item fails here. */
static int cli_check_limits(const pgs_config_t *cfg, const char *label)
{
    pgs_ratelimit_override_t o[1];
    char errstr[256];
    if (pgs_ratelimit_parse_overrides(pgs_config_str(cfg, "limits.overrides"), o, 0, errstr,
                                      sizeof(errstr)) >= 0)
        return 0;
    fprintf(stderr, "%s: limits.overrides: %s\n", label, errstr);
    return 1;
}

static int cli_check_kafka(const pgs_config_t *cfg, const char *label)
{
    static const pgs_kafka_role_t roles[] = {PGS_KAFKA_CONSUMER, PGS_KAFKA_PRODUCER};
    int nerr = 0;
    char errstr[512], last[512] = "";
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        rd_kafka_conf_t *conf =
            pgs_kafkaconf_new(cfg, roles[i], NULL, NULL, errstr, sizeof(errstr));
        if (conf == NULL) {
            /* a shared key fails for both roles: say it once */
            if (strcmp(errstr, last) != 0) {
                fprintf(stderr, "%s: %s\n", label, errstr);
                nerr++;
            }
            snprintf(last, sizeof(last), "%s", errstr);
        } else {
            rd_kafka_conf_destroy(conf);
        }
    }
    return nerr;
}

int pgs_cmd_check_config(int argc, char **argv)
{
    enum { OPT_HELP_CONFIG = 256, OPT_MARKDOWN };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"print", no_argument, NULL, 'p'},
        {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
        {"markdown", no_argument, NULL, OPT_MARKDOWN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int print = 0, c;

    /* main hands over argv starting at the subcommand name */
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            print = 1;
            break;
        case OPT_HELP_CONFIG:
            pgs_config_print_help(stdout);
            return PGS_EXIT_OK;
        case OPT_MARKDOWN:
            pgs_config_print_markdown(stdout);
            return PGS_EXIT_OK;
        case 'h':
            cli_check_config_usage(stdout);
            return PGS_EXIT_OK;
        default:
            cli_check_config_usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pgscribe check-config: unexpected argument '%s'\n", argv[optind]);
        cli_check_config_usage(stderr);
        return PGS_EXIT_USAGE;
    }

    /* Check what the other subcommands would read, falling back to the
     * repository's sample file for a checkout. */
    path = pgs_cli_config_path(path);
    if (path == NULL && access(CLI_DEFAULT_CONFIG, R_OK) == 0)
        path = CLI_DEFAULT_CONFIG;
    const char *label = path ? path : "(defaults)";

    pgs_config_t *cfg = NULL;
    int nerr = pgs_cli_load(path, &cfg);
    if (nerr == 0)
        nerr = cli_check_limits(cfg, label) + cli_check_kafka(cfg, label);
    if (nerr > 0) {
        fprintf(stderr, "%s: %d error%s\n", label, nerr, nerr == 1 ? "" : "s");
        pgs_config_free(cfg);
        return PGS_EXIT_CONFIG;
    }
    /* a warning, not an error: pgscribe runs without a keyring */
    const char *ring = pgs_config_str(cfg, "crypto.keyring");
    if (!ring || !*ring)
        fprintf(stderr,
                "%s: warning: crypto.keyring is empty: dead-letter values are stored in clear "
                "and PHI columns cannot be written\n",
                label);
    if (print) {
        /* keep stdout a clean listing of values */
        pgs_config_print_values(cfg, stdout);
        fprintf(stderr, "%s: ok\n", label);
    } else {
        printf("%s: ok\n", label);
    }
    pgs_config_free(cfg);
    return PGS_EXIT_OK;
}
