/* Subcommands of the pgscribe binary. Each parses its own arguments
 * (getopt_long, --help on each) and returns the process exit code. */
#ifndef PGSCRIBE_CLI_H
#define PGSCRIBE_CLI_H

/* Exit codes (documented in docs/operations.md). */
#define PGS_EXIT_OK       0
#define PGS_EXIT_FAILURE  1 /* runtime failure */
#define PGS_EXIT_USAGE    2 /* bad arguments */
#define PGS_EXIT_CONFIG   3 /* invalid configuration */
#define PGS_EXIT_DATABASE 4 /* database unreachable or schema unusable at start */
#define PGS_EXIT_KAFKA    5 /* Kafka client could not be created, or TLS/auth refused at start */

int pgs_cmd_run(int argc, char **argv);
int pgs_cmd_migrate(int argc, char **argv);
int pgs_cmd_produce(int argc, char **argv);
int pgs_cmd_broker(int argc, char **argv);
int pgs_cmd_check_config(int argc, char **argv);
int pgs_cmd_metrics(int argc, char **argv);
int pgs_cmd_top(int argc, char **argv);
int pgs_cmd_profile(int argc, char **argv);
int pgs_cmd_topics(int argc, char **argv);
int pgs_cmd_replay(int argc, char **argv);
int pgs_cmd_prune(int argc, char **argv);
int pgs_cmd_audit(int argc, char **argv);
int pgs_cmd_resume(int argc, char **argv);
int pgs_cmd_keys(int argc, char **argv);
int pgs_cmd_rekey(int argc, char **argv);
int pgs_cmd_show(int argc, char **argv);
int pgs_cmd_anonymize(int argc, char **argv);

/**
 * @brief Loads the config for a subcommand: table defaults, then @p path if
 *        not NULL (else $PGSCRIBE_CONFIG if set), then environment overrides.
 *        Prints file:line errors to stderr. NULL on error.
 */
struct pgs_config_s *pgs_cli_load_config(const char *path);

/** @brief @p path if not NULL, else $PGSCRIBE_CONFIG if set, else NULL. */
const char *pgs_cli_config_path(const char *path);

/**
 * @brief Loads defaults, then @p path (if not NULL), then the environment.
 * @returns the number of errors, each printed on stderr; *out is set only on
 *          success.
 */
int pgs_cli_load(const char *path, struct pgs_config_s **out);

/**
 * @brief The conninfo of a maintenance subcommand (migrate, prune): @p opt
 *        if given, else $PGSCRIBE_PG_ADMIN_CONNINFO, else
 *        $PGSCRIBE_PG_CONNINFO, else "" (libpq's PG* variables).
 */
const char *pgs_cli_admin_conninfo(const char *opt);

#endif
