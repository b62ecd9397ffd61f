/* Config loading and conninfo lookup shared by every subcommand. */
#include <stdio.h>
#include <stdlib.h>

#include "common/cli.h"
#include "common/config.h"

#define CLI_ERRSTR_SIZE 65536

/* The file a subcommand reads when given no -c: $PGSCRIBE_CONFIG, or none. */
const char *pgs_cli_config_path(const char *path)
{
    if (path != NULL)
        return path;
    const char *env = getenv("PGSCRIBE_CONFIG");
    return (env != NULL && *env) ? env : NULL;
}

/* Loads defaults, then @p path, then the environment. @returns the number of
 * errors, each printed on stderr; *out is set only on success. */
int pgs_cli_load(const char *path, pgs_config_t **out)
{
    pgs_config_t *cfg = pgs_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "pgscribe: out of memory\n");
        return 1;
    }
    if (path == NULL) {
        *out = cfg;
        return 0;
    }
    char *errstr = calloc(1, CLI_ERRSTR_SIZE);
    if (errstr == NULL) {
        fprintf(stderr, "pgscribe: out of memory\n");
        pgs_config_free(cfg);
        return 1;
    }
    int nerr = pgs_config_load(cfg, path, errstr, CLI_ERRSTR_SIZE);
    if (nerr > 0) {
        fputs(errstr, stderr);
        pgs_config_free(cfg);
        cfg = NULL;
    }
    free(errstr);
    *out = cfg;
    return nerr;
}

const char *pgs_cli_admin_conninfo(const char *opt)
{
    static const char *const envs[] = {"PGSCRIBE_PG_ADMIN_CONNINFO", "PGSCRIBE_PG_CONNINFO"};
    if (opt)
        return opt;
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
        const char *v = getenv(envs[i]);
        if (v)
            return v;
    }
    return ""; /* libpq's PGHOST, PGDATABASE... */
}

struct pgs_config_s *pgs_cli_load_config(const char *path)
{
    pgs_config_t *cfg = NULL;
    pgs_cli_load(pgs_cli_config_path(path), &cfg);
    return cfg;
}
