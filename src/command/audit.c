/* `pgscribe audit verify`: recomputes every clinic's hash chain in
 * audit.events (docs/audit.md) and reports the first broken link of each.
 * Rows stream through COPY TO STDOUT, one at a time, so memory stays
 * constant; clinics are verified in parallel, one connection per job. */
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/audit_archive.h"
#include "command/audit_anchor.h"
#include "command/audit_export.h"
#include "command/audit_verify.h"
#include "common/cli.h"
#include "common/clock.h"

#define VERIFY_DEFAULT_JOBS 2
#define VERIFY_MAX_JOBS     64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe audit verify [--clinic C] [--from T] [--to T] [--jobs N]\n"
            "                             [--anchors FILE | --anchor-topic[=T]] [--config FILE]\n"
            "                             [--conninfo CONNINFO] [--help]\n"
            "       pgscribe audit verify --archive FILE\n"
            "Recomputes the audit trail's hash chains and reports broken links.\n"
            "\n"
            "For each clinic, reads audit.events in seq order and checks that seq has no\n"
            "gap, that each row's prev_hash is the previous row's hash, that its hash is\n"
            "SHA-256(prev_hash || canonical encoding of the row) (docs/audit.md), and\n"
            "that the last row is the clinic's head in audit.chain_heads. Reports the\n"
            "first broken link of each clinic: clinic, seq, expected and found hash.\n"
            "With --from, a clinic's chain starts at its first row recorded at or after\n"
            "T, whose prev_hash is then trusted as the boundary. A chain whose older\n"
            "months were archived starts at the boundary audit.archived_boundaries holds.\n"
            "With --archive, checks an archive file of `pgscribe audit archive` against\n"
            "its manifest (checksum, row count, chains inside it) instead.\n"
            "\n"
            "options:\n"
            "  --clinic C           verify one clinic only\n"
            "  --from T             start at recorded_at >= T (a PostgreSQL timestamptz)\n"
            "  --to T               stop before recorded_at T (the head is then not checked)\n"
            "  --jobs N             clinics verified in parallel, one connection each\n"
            "                       (default %d)\n"
            "  --archive FILE       check FILE (audit-events-YYYY-MM.csv.gz) against its\n"
            "                       manifest; no database needed\n"
            "  --anchors FILE       also check the anchors of FILE (`pgscribe audit anchor`\n"
            "                       output; - for stdin): the row at each anchored seq must\n"
            "                       have the anchored hash\n"
            "  --anchor-topic[=T]   the same with every anchor of topic T (default\n"
            "                       audit.anchor_topic of --config)\n"
            "  --config FILE        configuration file for --anchor-topic's Kafka settings\n"
            "  --conninfo CONNINFO  a role that may read audit.*; default\n"
            "                       $PGSCRIBE_PG_ADMIN_CONNINFO, then $PGSCRIBE_PG_CONNINFO,\n"
            "                       then libpq's PG* variables\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  every chain verified\n"
            "  1  a link is broken (or a database error midway)\n"
            "  2  bad arguments\n"
            "  4  database unreachable\n",
            VERIFY_DEFAULT_JOBS);
}

static void audit_usage(FILE *out)
{
    fprintf(out, "usage: pgscribe audit <subcommand> [options]\n"
                 "Works on the audit trail (audit.events).\n"
                 "\n"
                 "subcommands:\n"
                 "  verify    recompute the hash chains and report broken links\n"
                 "  archive   archive and drop the months older than the retention\n"
                 "  anchor    publish each clinic's chain head to the anchor topic\n"
                 "  export    stream a clinic's trail or its disclosures (ndjson, csv)\n"
                 "\n"
                 "options:\n"
                 "  -h, --help     show this help\n"
                 "\n"
                 "exit codes:\n"
                 "  0  ok\n"
                 "  2  unknown subcommand or bad arguments\n"
                 "  otherwise that of the subcommand\n");
}

typedef struct {
    const char *conninfo;
    const pgs_audit_verify_range_t *range;
    char **clinics;
    pgs_audit_verify_result_t *results;
    int nclinics;
    int next;
    pthread_mutex_t mu;
} verify_pool_t;

static void *verify_job(void *arg)
{
    verify_pool_t *vp = arg;
    PGconn *pg = PQconnectdb(vp->conninfo);
    int ok = PQstatus(pg) == CONNECTION_OK;
    for (;;) {
        pthread_mutex_lock(&vp->mu);
        int i = vp->next < vp->nclinics ? vp->next++ : -1;
        pthread_mutex_unlock(&vp->mu);
        if (i < 0)
            break;
        if (!ok) {
            snprintf(vp->results[i].error, sizeof(vp->results[i].error), "cannot connect: %s",
                     PQerrorMessage(pg));
            continue;
        }
        pgs_audit_verify_clinic(pg, vp->clinics[i], vp->range, &vp->results[i]);
    }
    PQfinish(pg);
    return NULL;
}

/* The clinics to verify: every chain head, or the one asked for. */
static int list_clinics(PGconn *pg, const char *only, char ***out)
{
    const char *params[] = {only};
    PGresult *res = PQexecParams(pg,
                                 "SELECT clinic_id FROM audit.chain_heads"
                                 " WHERE $1::text IS NULL OR clinic_id = $1 ORDER BY 1",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscribe audit verify: listing clinics: %s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res);
    *out = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++)
        (*out)[i] = strdup(PQgetvalue(res, i, 0));
    PQclear(res);
    return n;
}

static void print_result(const char *clinic, const pgs_audit_verify_result_t *r)
{
    if (r->error[0])
        printf("error: clinic %s: %s\n", clinic, r->error);
    else if (r->broken)
        printf("broken: clinic %s seq %" PRId64 ": %s; expected %s, found %s\n", clinic,
               r->broken_seq, r->what, r->expected, r->found);
}

static int verify_run(const char *conninfo, const char *clinic, const pgs_audit_verify_range_t *rg,
                      int jobs)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host and user, never the password */
        fprintf(stderr, "pgscribe audit verify: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return PGS_EXIT_DATABASE;
    }
    char **clinics = NULL;
    int n = list_clinics(pg, clinic, &clinics);
    PQfinish(pg);
    if (n < 0)
        return PGS_EXIT_FAILURE;
    if (rg->from)
        printf("starting each chain at its first row recorded at or after %s; that row's "
               "prev_hash is trusted as the boundary\n",
               rg->from);
    if (rg->to)
        printf("stopping before %s: chain heads not compared\n", rg->to);
    verify_pool_t vp = {.conninfo = conninfo, .range = rg, .clinics = clinics, .nclinics = n};
    vp.results = calloc((size_t)n + 1, sizeof(*vp.results));
    pthread_mutex_init(&vp.mu, NULL);
    int64_t t0 = pgs_clock_now_us();
    pthread_t th[VERIFY_MAX_JOBS];
    int started = 0;
    for (int j = 0; j < jobs && j < (n > 0 ? n : 1); j++) {
        if (pthread_create(&th[j], NULL, verify_job, &vp) == 0)
            started++;
    }
    for (int j = 0; j < started; j++)
        pthread_join(th[j], NULL);
    double secs = (double)(pgs_clock_now_us() - t0) / 1e6;
    int64_t rows = 0;
    int broken = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        rows += vp.results[i].rows;
        broken += vp.results[i].broken;
        errors += vp.results[i].error[0] != 0;
        print_result(clinics[i], &vp.results[i]);
        free(clinics[i]);
    }
    printf("verified %" PRId64 " rows of %d clinics in %.2f s (%.0f events/s, %d jobs): %d "
           "broken, %d errors\n",
           rows, n, secs, secs > 0 ? (double)rows / secs : 0.0, started, broken, errors);
    pthread_mutex_destroy(&vp.mu);
    free(vp.results);
    free(clinics);
    return broken || errors || started == 0 ? PGS_EXIT_FAILURE : PGS_EXIT_OK;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clinic", required_argument, NULL, 'C'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"jobs", required_argument, NULL, 'j'},
        {"conninfo", required_argument, NULL, 'c'},
        {"archive", required_argument, NULL, 'a'},
        {"anchors", required_argument, NULL, 'A'},
        {"anchor-topic", optional_argument, NULL, 'T'},
        {"config", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *clinic = NULL, *conninfo = NULL, *archive = NULL, *anchors = NULL,
               *anchor_topic = NULL, *config = NULL;
    int use_anchor_topic = 0;
    pgs_audit_verify_range_t rg = {0};
    int jobs = VERIFY_DEFAULT_JOBS, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "C:f:t:j:c:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            archive = optarg;
            break;
        case 'C':
            clinic = optarg;
            break;
        case 'f':
            rg.from = optarg;
            break;
        case 't':
            rg.to = optarg;
            break;
        case 'j': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > VERIFY_MAX_JOBS) {
                fprintf(stderr, "pgscribe audit verify: --jobs must be 1..%d\n", VERIFY_MAX_JOBS);
                return PGS_EXIT_USAGE;
            }
            jobs = (int)v;
            break;
        }
        case 'c':
            conninfo = optarg;
            break;
        case 'A':
            anchors = optarg;
            break;
        case 'T':
            use_anchor_topic = 1;
            anchor_topic = optarg;
            break;
        case 'F':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pgscribe audit verify: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    if (archive)
        return pgs_audit_archive_verify_main(archive);
    if (anchors && use_anchor_topic) {
        fprintf(stderr, "pgscribe audit verify: --anchors and --anchor-topic exclude each other\n");
        return PGS_EXIT_USAGE;
    }
    int rc = verify_run(pgs_cli_admin_conninfo(conninfo), clinic, &rg, jobs);
    if ((anchors || use_anchor_topic) && rc != PGS_EXIT_DATABASE) {
        int arc = pgs_audit_verify_anchors(pgs_cli_admin_conninfo(conninfo), anchors, config,
                                           anchor_topic, clinic, rg.from);
        if (arc != PGS_EXIT_OK && rc == PGS_EXIT_OK)
            rc = arc;
    }
    return rc;
}

int pgs_cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        audit_usage(stderr);
        return PGS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        audit_usage(stdout);
        return PGS_EXIT_OK;
    }
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "archive") == 0)
        return pgs_audit_archive_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "anchor") == 0)
        return pgs_audit_anchor_cmd(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0)
        return pgs_audit_export_cmd(argc - 1, argv + 1);
    fprintf(stderr, "pgscribe audit: unknown subcommand '%s'\n", argv[1]);
    audit_usage(stderr);
    return PGS_EXIT_USAGE;
}
