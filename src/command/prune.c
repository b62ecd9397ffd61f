/* `pgscribe prune`: deletes idempotency records (pgscribe.applied_commands)
 * older than a given age, in batches of one short transaction each, so the
 * table does not grow without bound. A command redelivered after its record
 * is gone would be applied again: the age must exceed the longest time a
 * command can come back (topic retention, dead-letter replays). */
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/duration.h"
#include "common/clock.h"
#include "common/config.h"
#include "run/pgnotice.h"

/* Below this age prune refuses without --force. */
#define PRUNE_MIN_AGE_S     (24 * 3600)
#define PRUNE_DEFAULT_BATCH 10000

static const char *const SQL_CUTOFF =
    "SELECT (now() - make_interval(secs => $1::double precision))::text";
static const char *const SQL_COUNT =
    "SELECT count(*) FROM pgscribe.applied_commands WHERE applied_at < $1::timestamptz";
static const char *const SQL_DELETE_BATCH =
    "WITH doomed AS (SELECT command_id FROM pgscribe.applied_commands"
    " WHERE applied_at < $1::timestamptz LIMIT $2::int FOR UPDATE SKIP LOCKED)"
    " DELETE FROM pgscribe.applied_commands a USING doomed d WHERE a.command_id = d.command_id";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe prune --older-than AGE [--conninfo CONNINFO] [--batch N]\n"
            "                      [--config FILE] [--dry-run] [--force] [--help]\n"
            "Deletes idempotency records of commands applied more than AGE ago.\n"
            "\n"
            "Deletes rows of pgscribe.applied_commands, N per transaction. A command that\n"
            "arrives again after its record is gone is applied again, so AGE must exceed\n"
            "the commands topic's retention and any dead-letter replay window. Audit rows\n"
            "are never touched. AGE may not be under resume.window (default 7d): a rewind\n"
            "after a restore relies on the records of that window.\n"
            "\n"
            "options:\n"
            "  --older-than AGE     30d, 12h, 90m, 2w ...; below 1d needs --force\n"
            "  --conninfo CONNINFO  a role that may delete from pgscribe.applied_commands;\n"
            "                       default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
            "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
            "  --batch N            rows per transaction (default %d)\n"
            "  --config FILE        configuration file (resume.window)\n"
            "  --dry-run            count what would be deleted, delete nothing\n"
            "  --force              allow an AGE below 1d\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  done\n"
            "  1  a database error midway (what was deleted stays deleted)\n"
            "  2  bad arguments\n"
            "  4  database unreachable\n",
            PRUNE_DEFAULT_BATCH);
}

/* @returns the single value of a one-row result, or NULL (error printed). */
static char *prune_scalar(PGconn *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    char *v = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = strdup(PQgetvalue(res, 0, 0));
    else
        fprintf(stderr, "pgscribe prune: %s", PQerrorMessage(pg));
    PQclear(res);
    return v;
}

static int prune_run(PGconn *pg, int64_t age_s, int batch, int dry_run)
{
    char age[32], lim[32];
    snprintf(age, sizeof(age), "%" PRId64, age_s);
    snprintf(lim, sizeof(lim), "%d", batch);
    /* one cutoff for the whole run: rows applied meanwhile never qualify */
    const char *p1[] = {age};
    char *cutoff = prune_scalar(pg, SQL_CUTOFF, 1, p1);
    if (!cutoff)
        return PGS_EXIT_FAILURE;
    const char *p2[] = {cutoff, lim};
    int rc = PGS_EXIT_OK;
    if (dry_run) {
        char *n = prune_scalar(pg, SQL_COUNT, 1, p2);
        if (n)
            printf("would prune %s idempotency record(s) applied before %s\n", n, cutoff);
        else
            rc = PGS_EXIT_FAILURE;
        free(n);
        free(cutoff);
        return rc;
    }
    int64_t t0 = pgs_clock_now_us();
    long long total = 0, batches = 0;
    for (;;) {
        PGresult *res = PQexecParams(pg, SQL_DELETE_BATCH, 2, NULL, p2, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "pgscribe prune: after %lld row(s): %s", total, PQerrorMessage(pg));
            PQclear(res);
            rc = PGS_EXIT_FAILURE;
            break;
        }
        long long n = atoll(PQcmdTuples(res));
        PQclear(res);
        total += n;
        batches++;
        if (n < batch)
            break;
    }
    double secs = (double)(pgs_clock_now_us() - t0) / 1e6;
    if (rc == PGS_EXIT_OK)
        printf("pruned %lld idempotency record(s) applied before %s in %lld transaction(s), "
               "%.2f s\n",
               total, cutoff, batches, secs);
    free(cutoff);
    return rc;
}

/* The rewind after a restore (src/run/rewind.c) starts a partition past the
 * highest offset the database records: pruning records of the last
 * resume.window could make that lower than what was applied, and commands
 * re-read from there would be applied twice. --force does not lift it;
 * resume.window does. */
static int prune_check_window(const char *path, const char *older, int64_t age_s)
{
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    const char *window = pgs_config_str(cfg, "resume.window");
    int64_t window_s = 0;
    int rc = PGS_EXIT_OK;
    if (pgs_duration_parse(window, &window_s) != 0) {
        fprintf(stderr,
                "pgscribe prune: resume.window '%s': expected a number and s, m, h, d or w\n",
                window);
        rc = PGS_EXIT_CONFIG;
    } else if (age_s < window_s) {
        fprintf(stderr,
                "pgscribe prune: --older-than %s is under resume.window (%s): the records of the "
                "rewind window must stay, or a rewind after a restore applies commands twice; "
                "nothing was deleted\n",
                older, window);
        rc = PGS_EXIT_USAGE;
    }
    pgs_config_free(cfg);
    return rc;
}

int pgs_cmd_prune(int argc, char **argv)
{
    static const struct option opts[] = {
        {"older-than", required_argument, NULL, 'o'},
        {"conninfo", required_argument, NULL, 'c'},
        {"batch", required_argument, NULL, 'b'},
        {"config", required_argument, NULL, 'C'},
        {"dry-run", no_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *older = NULL, *conninfo = NULL, *path = NULL;
    int batch = PRUNE_DEFAULT_BATCH, dry_run = 0, force = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:c:b:nfh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            older = optarg;
            break;
        case 'c':
            conninfo = optarg;
            break;
        case 'C':
            path = optarg;
            break;
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "pgscribe prune: --batch must be 1..1000000\n");
                return PGS_EXIT_USAGE;
            }
            batch = (int)v;
            break;
        }
        case 'n':
            dry_run = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc || !older) {
        fprintf(stderr, "pgscribe prune: %s\n",
                !older ? "--older-than is required" : "unexpected argument");
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    int64_t age_s;
    if (pgs_duration_parse(older, &age_s) != 0) {
        fprintf(stderr,
                "pgscribe prune: --older-than '%s': expected a number and s, m, h, d or w\n",
                older);
        return PGS_EXIT_USAGE;
    }
    if (age_s < PRUNE_MIN_AGE_S && !force) {
        fprintf(stderr,
                "pgscribe prune: --older-than %s is under 1d: a command redelivered after its "
                "record is gone is applied twice; add --force if that cannot happen\n",
                older);
        return PGS_EXIT_USAGE;
    }
    int rc = prune_check_window(path, older, age_s);
    if (rc != PGS_EXIT_OK)
        return rc;
    PGconn *pg = PQconnectdb(pgs_cli_admin_conninfo(conninfo));
    pgs_pgnotice_attach(pg); /* warnings as log lines, without their text */
    if (PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host and user, never the password */
        fprintf(stderr, "pgscribe prune: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return PGS_EXIT_DATABASE;
    }
    rc = prune_run(pg, age_s, batch, dry_run);
    PQfinish(pg);
    return rc;
}
