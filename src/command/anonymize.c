/* `pgscribe anonymize`: copies clinics from the production database into
 * another one with every column masked per pgscribe.column_policy
 * (migration 0016): deterministic pseudonyms under the keyring's pseudonym
 * key (so equal values stay equal and joins hold), dates generalised to
 * their year, or null. Field-encrypted columns are decrypted on the way and
 * never written in clear. One clinic at a time: the source in one REPEATABLE
 * READ snapshot, the target in one transaction that replaces the clinic's
 * rows, so a re-run replaces the copy and a failed run leaves the last one.
 * Rows stream through a cursor in batches (memory is one batch, whatever
 * the clinic's size). Each clinic copied is an EXPORT event in its audit
 * trail on the source. See docs/security.md, "Masked copies". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "command/anon_copy.h"
#include "command/anon_plan.h"
#include "command/keys_table.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/keyring.h"
#include "common/sbuf.h"
#include "sql/sqlbatch.h"

#define WHO           "pgscribe anonymize"
#define DEFAULT_BATCH 1000
#define MAX_CLINICS   1024

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe anonymize --target CONNINFO [--clinic C ...] [--schema S]\n"
            "                          [--batch N] [--operator NAME] [--keyring F]\n"
            "                          [--config FILE] [--conninfo CONNINFO]\n"
            "                          [--progress|--no-progress] [--help]\n"
            "Copies clinics into another database with PHI masked per pgscribe.column_policy.\n"
            "\n"
            "Each column is copied by its mask: pseudonym (HMAC-SHA-256 under the clinic's\n"
            "pseudonym key; equal values give equal pseudonyms, so joins hold), year (a date\n"
            "or timestamp becomes 1 January of its year), null, or keep. Encrypted columns\n"
            "are decrypted first. The target must be migrated (`pgscribe migrate`) and must\n"
            "not be the source; a clinic's rows there are replaced, in one transaction.\n"
            "Every clinic copied is an EXPORT event in its audit trail on the source.\n"
            "\n"
            "options:\n"
            "  --target CONNINFO    the database that receives the copy (required)\n"
            "  --clinic C           a clinic to copy; repeatable (default: every clinic)\n"
            "  --schema S           the schema copied (default pg.schema)\n"
            "  --batch N            rows per fetch and per COPY (default %d, 1..100000)\n"
            "  --operator NAME      who copies, recorded beside the database user\n"
            "                       (default $USER)\n"
            "  --keyring F          keyring file (default: crypto.keyring of the config)\n"
            "  --conninfo CONNINFO  the source; default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
            "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
            "  --progress           a progress bar (default when stderr is a terminal);\n"
            "                       --no-progress prints a line per table instead\n"
            "\n"
            "exit codes:\n"
            "  0  every clinic copied and recorded\n"
            "  1  a value did not decrypt, a database error, or the target is not ready\n"
            "     (the clinic being copied is rolled back in the target)\n"
            "  2  bad arguments, or the target is the source\n"
            "  3  invalid configuration or keyring, or no pseudonym key for a clinic\n"
            "  4  a database unreachable\n",
            DEFAULT_BATCH);
}

typedef struct {
    const char *target, *schema, *operator_name;
    const char *clinics[MAX_CLINICS];
    int nclinics;
} anon_opts_t;

static int set_clinic(PGconn *pg, const char *clinic, const char *what)
{
    const char *v[1] = {clinic};
    PGresult *res = PQexecParams(pg, "SELECT set_config('pgscribe.clinic_id', $1, true)", 1, NULL,
                                 v, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok)
        fprintf(stderr, WHO ": setting the clinic on the %s failed\n", what);
    return ok ? 0 : -1;
}

/* The same server and database on both ends would replace production. */
static int same_database(PGconn *src, PGconn *dst)
{
    static const char *const q =
        "SELECT current_database() || '/' || pg_postmaster_start_time()::text || '/' ||"
        " coalesce(inet_server_port(), 0)::text";
    PGresult *a = PQexec(src, q), *b = PQexec(dst, q);
    int same = PQresultStatus(a) == PGRES_TUPLES_OK && PQresultStatus(b) == PGRES_TUPLES_OK &&
               strcmp(PQgetvalue(a, 0, 0), PQgetvalue(b, 0, 0)) == 0;
    PQclear(a);
    PQclear(b);
    return same;
}

/* Every clinic with a row in a table of the plan. */
static PGresult *all_clinics(PGconn *src, const pgs_anon_plan_t *plan)
{
    pgs_sbuf_t sb = {0};
    for (int i = 0; i < plan->ntables; i++) {
        pgs_sbuf_puts(&sb, i ? " UNION SELECT clinic_id FROM " : "SELECT clinic_id FROM ");
        pgs_ktable_ident(&sb, &plan->tables[i].kt);
    }
    pgs_sbuf_puts(&sb, " ORDER BY 1");
    PGresult *res = PQexec(src, sb.buf);
    free(sb.buf);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQerrorMessage(src);
        fprintf(stderr, WHO ": listing the clinics: %.*s\n", (int)strcspn(m, "\n"), m);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* The EXPORT event: which columns were masked or decrypted, where to. */
static int record_export(PGconn *src, const pgs_anon_plan_t *plan, const char *clinic,
                         const char *recipient, long rows, const char *operator_name)
{
    pgs_sbuf_t arr = {0};
    size_t n = 0;
    for (int i = 0; i < plan->ntables; i++) {
        const pgs_anon_table_t *t = &plan->tables[i];
        for (int j = 0; j < t->kt.ncols; j++) {
            if (t->cols[j].mask == PGS_MASK_KEEP && !t->kt.cols[j].sealed)
                continue;
            char item[600];
            int len =
                snprintf(item, sizeof(item), "%s.%s:%s%s", t->kt.table, t->kt.cols[j].name,
                         pgs_mask_name(t->cols[j].mask), t->kt.cols[j].sealed ? ",decrypted" : "");
            pgs_sqlbatch_array_sep(&arr, n++);
            pgs_sqlbatch_put_element(&arr, item, (size_t)len);
        }
    }
    pgs_sbuf_t cols = {.buf = pgs_sqlbatch_array_close(&arr)};
    char nrows[24];
    snprintf(nrows, sizeof(nrows), "%ld", rows);
    const char *v[6] = {clinic, plan->schema, cols.buf, recipient, nrows, operator_name};
    int rc = pgs_ktable_exec(src, "BEGIN", WHO);
    PGresult *res = rc ? NULL
                       : PQexecParams(src,
                                      "SELECT pgscribe.record_export($1, $2, $3::text[], $4,"
                                      " $5::bigint, $6)",
                                      6, NULL, v, NULL, NULL, 0);
    free(cols.buf);
    if (rc == 0 && PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQerrorMessage(src);
        fprintf(stderr, WHO ": recording the EXPORT event of clinic %s: %.*s\n", clinic,
                (int)strcspn(m, "\n"), m);
        rc = -1;
    }
    PQclear(res);
    if (rc == 0)
        return pgs_ktable_exec(src, "COMMIT", WHO);
    PQclear(PQexec(src, "ROLLBACK"));
    return -1;
}

/* One clinic: the target's rows replaced in one transaction from one
 * snapshot of the source. Returns rows copied, or -1. */
static long copy_clinic(pgs_anon_copy_t *c, const pgs_anon_plan_t *plan, const char *clinic)
{
    if (pgs_ktable_exec(c->src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", WHO) ||
        pgs_ktable_exec(c->src, "SET LOCAL DateStyle = 'ISO, YMD'", WHO) ||
        pgs_ktable_exec(c->src, "SET LOCAL bytea_output = 'hex'", WHO) ||
        set_clinic(c->src, clinic, "source") || pgs_ktable_exec(c->dst, "BEGIN", WHO) ||
        pgs_ktable_exec(c->dst, "SET LOCAL DateStyle = 'ISO, YMD'", WHO) ||
        set_clinic(c->dst, clinic, "target") || pgs_anon_clear(c, plan, clinic) != 0) {
        PQclear(PQexec(c->src, "ROLLBACK"));
        PQclear(PQexec(c->dst, "ROLLBACK"));
        return -1;
    }
    long rows = 0;
    for (int ti = 0; ti < plan->ntables && rows >= 0; ti++) {
        long n = pgs_anon_copy_table(c, plan, ti, clinic);
        rows = n < 0 ? -1 : rows + n;
    }
    if (rows >= 0 && pgs_ktable_exec(c->dst, "COMMIT", WHO) != 0)
        rows = -1;
    if (rows < 0)
        PQclear(PQexec(c->dst, "ROLLBACK"));
    PQclear(PQexec(c->src, rows < 0 ? "ROLLBACK" : "COMMIT"));
    return rows;
}

static int needs_pseudonym(const pgs_anon_plan_t *p)
{
    int n = 0;
    for (int i = 0; i < p->ntables; i++)
        n += p->tables[i].npseudonym;
    return n > 0;
}

static int needs_field_keys(const pgs_anon_plan_t *p)
{
    int n = 0;
    for (int i = 0; i < p->ntables; i++)
        n += p->tables[i].nseal;
    return n > 0;
}

static int run(pgs_anon_copy_t *c, const anon_opts_t *o, const char *keyring)
{
    char err[512];
    pgs_anon_plan_t plan;
    if (pgs_anon_plan_load(c->src, c->dst, o->schema, &plan, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        return PGS_EXIT_FAILURE;
    }
    PgsKeyring *ring = NULL;
    int rc = PGS_EXIT_OK;
    if (needs_pseudonym(&plan) || needs_field_keys(&plan)) {
        if (!(ring = pgs_ktable_keyring(keyring, err, sizeof(err)))) {
            fprintf(stderr, WHO ": %s (the masks need a pseudonym key%s)\n", err,
                    needs_field_keys(&plan) ? " and the field keys" : "");
            rc = PGS_EXIT_CONFIG;
        }
    }
    c->ring = ring;
    PGresult *listed = NULL;
    const char **clinics = (const char **)o->clinics;
    int nclinics = o->nclinics;
    if (rc == PGS_EXIT_OK && nclinics == 0) {
        if (!(listed = all_clinics(c->src, &plan)))
            rc = PGS_EXIT_FAILURE;
        nclinics = listed ? PQntuples(listed) : 0;
        clinics = listed ? calloc((size_t)nclinics + 1, sizeof(*clinics)) : NULL;
        for (int i = 0; i < nclinics; i++)
            clinics[i] = PQgetvalue(listed, i, 0);
    }
    char recipient[512];
    snprintf(recipient, sizeof(recipient), "%s/%s", PQhost(c->dst) ? PQhost(c->dst) : "",
             PQdb(c->dst) ? PQdb(c->dst) : "");
    long total = 0;
    int copied = 0;
    for (int i = 0; i < nclinics && rc == PGS_EXIT_OK; i++) {
        c->pkey = ring ? pgs_keyring_current(ring, PGS_KEY_PSEUDONYM, clinics[i]) : NULL;
        if (needs_pseudonym(&plan) && !c->pkey) {
            fprintf(stderr,
                    WHO ": clinic %s has no pseudonym key: `pgscribe keys rotate --purpose "
                        "pseudonym` makes one\n",
                    clinics[i]);
            rc = PGS_EXIT_CONFIG;
            break;
        }
        long n = copy_clinic(c, &plan, clinics[i]);
        if (n < 0 || record_export(c->src, &plan, clinics[i], recipient, n, o->operator_name)) {
            rc = PGS_EXIT_FAILURE;
            break;
        }
        total += n;
        copied++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s: %d clinic(s), %ld row(s) copied to %s; peak memory %ld KiB\n", WHO, copied, total,
           recipient, ru.ru_maxrss);
    if (listed) {
        free(clinics);
        PQclear(listed);
    }
    pgs_keyring_free(ring);
    pgs_anon_plan_free(&plan);
    return rc;
}

int pgs_cmd_anonymize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'},   {"clinic", required_argument, NULL, 'l'},
        {"schema", required_argument, NULL, 's'},   {"batch", required_argument, NULL, 'b'},
        {"operator", required_argument, NULL, 'o'}, {"keyring", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'C'},   {"conninfo", required_argument, NULL, 'c'},
        {"progress", no_argument, NULL, 'P'},       {"no-progress", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    anon_opts_t o = {.operator_name = getenv("USER")};
    pgs_anon_copy_t c = {.batch = DEFAULT_BATCH, .bar = isatty(2), .who = WHO};
    const char *keyring = NULL, *config = NULL, *conninfo = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            o.target = optarg;
            break;
        case 'l':
            if (o.nclinics == MAX_CLINICS) {
                fprintf(stderr, WHO ": at most %d --clinic\n", MAX_CLINICS);
                return PGS_EXIT_USAGE;
            }
            o.clinics[o.nclinics++] = optarg;
            break;
        case 's':
            o.schema = optarg;
            break;
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, WHO ": --batch must be 1..100000\n");
                return PGS_EXIT_USAGE;
            }
            c.batch = (int)v;
            break;
        }
        case 'o':
            o.operator_name = optarg;
            break;
        case 'k':
            keyring = optarg;
            break;
        case 'C':
            config = optarg;
            break;
        case 'c':
            conninfo = optarg;
            break;
        case 'P':
            c.bar = 1;
            break;
        case 'N':
            c.bar = 0;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc || !o.target) {
        fprintf(stderr, WHO ": %s\n", o.target ? "unexpected argument" : "--target is required");
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = NULL;
    if (pgs_cli_config_path(config) && !(cfg = pgs_cli_load_config(config)))
        return PGS_EXIT_CONFIG;
    if (!keyring && cfg)
        keyring = pgs_config_str(cfg, "crypto.keyring");
    if (!o.schema)
        o.schema = cfg ? pgs_config_str(cfg, "pg.schema") : "clinic";
    int rc = PGS_EXIT_OK;
    c.src = pgs_ktable_connect(pgs_cli_admin_conninfo(conninfo), WHO);
    c.dst = c.src ? pgs_ktable_connect(o.target, WHO " (target)") : NULL;
    if (!c.src || !c.dst)
        rc = PGS_EXIT_DATABASE;
    else if (same_database(c.src, c.dst)) {
        fprintf(stderr, WHO ": --target is the source database; a masked copy goes elsewhere\n");
        rc = PGS_EXIT_USAGE;
    } else {
        rc = run(&c, &o, keyring && keyring[0] ? keyring : NULL);
    }
    PQfinish(c.dst);
    PQfinish(c.src);
    pgs_config_free(cfg);
    return rc;
}
