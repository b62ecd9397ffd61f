/* `pgscribe audit export` (see audit_export.h). The rows stream through
 * COPY ... TO STDOUT, one at a time, inside one REPEATABLE READ READ ONLY
 * snapshot, so memory stays constant whatever the trail's size. Timestamps
 * are rendered in UTC with their microseconds; hashes in hex. */
#include "command/audit_export.h"

#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/clock.h"
#include "common/sbuf.h"

/* The whole row, as docs/audit.md's table: what a recipient needs to
 * recompute each hash (the canonical encoding) and link. */
static const char *const TRAIL_COLS =
    "clinic_id, seq, kind, event_id, command_id, occurred_at, recorded_at, actor, action,"
    " entity, row_key, columns, outcome, recipient, purpose, description, source, details,"
    " source_topic, source_partition, source_offset, traceparent,"
    " encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash";

/* The accounting of disclosures: AuditEvents whose action is DISCLOSE. */
static const char *const DISCLOSURE_COLS =
    "(occurred_at AT TIME ZONE 'UTC')::date AS date, occurred_at, recorded_at, recipient,"
    " purpose, description, actor, entity, row_key, outcome, source, event_id, seq";

static const char *const WHERE = " FROM audit.events WHERE clinic_id = $1"
                                 " AND ($2::timestamptz IS NULL OR recorded_at >= $2::timestamptz)"
                                 " AND ($3::timestamptz IS NULL OR recorded_at < $3::timestamptz)";

static void usage(FILE *out)
{
    fprintf(out, "usage: pgscribe audit export --clinic C [--from T] [--to T]\n"
                 "                             [--format ndjson|csv] [--disclosures] [-o FILE]\n"
                 "                             [--progress] [--conninfo CONNINFO] [--help]\n"
                 "Streams one clinic's audit trail, or its accounting of disclosures.\n"
                 "\n"
                 "The trail comes in seq order with every column, prev_hash and hash (hex), so a\n"
                 "recipient can recompute the chain (docs/audit.md, \"Canonical encoding\").\n"
                 "--disclosures lists the DISCLOSE events only: date, recipient, purpose,\n"
                 "description, actor, entity and key. Timestamps are UTC, with microseconds.\n"
                 "Memory stays constant: the rows stream through COPY in one snapshot.\n"
                 "\n"
                 "options:\n"
                 "  --clinic C           the clinic (required)\n"
                 "  --from T             rows recorded at or after T (a PostgreSQL timestamptz)\n"
                 "  --to T               rows recorded before T\n"
                 "  --format F           ndjson (one JSON object a line, the default) or csv\n"
                 "                       (with a header line)\n"
                 "  --disclosures        the accounting of disclosures instead of the trail\n"
                 "  -o, --output FILE    write to FILE instead of stdout\n"
                 "  --progress           a progress bar on stderr even when it is not a\n"
                 "                       terminal (it is shown on a terminal anyway)\n"
                 "  --conninfo CONNINFO  a role that may read audit.events (pgscribe_auditor);\n"
                 "                       default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
                 "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
                 "  -h, --help           show this help\n"
                 "\n"
                 "exit codes:\n"
                 "  0  exported\n"
                 "  1  a database or write error midway\n"
                 "  2  bad arguments\n"
                 "  4  database unreachable\n");
}

size_t pgs_audit_export_unescape(char *line, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\' && i + 1 < len && line[i + 1] == '\\')
            i++;
        line[o++] = line[i];
    }
    return o;
}

typedef struct {
    int on;
    int tty;
    int64_t total, done, last_us;
    int last_pct;
} progress_t;

static void progress_show(progress_t *p, int final)
{
    if (!p->on)
        return;
    int64_t now = pgs_clock_now_us();
    int pct = p->total > 0 ? (int)(p->done * 100 / p->total) : 100;
    if (!final && (now - p->last_us < 200000 || (!p->tty && pct / 10 == p->last_pct / 10)))
        return;
    p->last_us = now;
    p->last_pct = pct;
    char bar[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "%s[%s] %3d%% %" PRId64 "/%" PRId64 " rows%s", p->tty ? "\r" : "", bar, pct,
            p->done, p->total, p->tty && !final ? "" : "\n");
    fflush(stderr);
}

static int pg_ok(PGconn *pg, PGresult *res, ExecStatusType want, const char *what)
{
    int ok = PQresultStatus(res) == want;
    if (!ok)
        fprintf(stderr, "pgscribe audit export: %s: %s", what, PQerrorMessage(pg));
    PQclear(res);
    return ok;
}

static int export_run(PGconn *pg, const char *const params[3], int csv, int disclosures, FILE *out,
                      progress_t *pr)
{
    if (!pg_ok(pg,
               PQexec(pg, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO';"
                          " BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
               PGRES_COMMAND_OK, "starting the snapshot"))
        return -1;
    pgs_sbuf_t q = {0};
    const char *filter = disclosures ? " AND kind = 'event' AND action = 'DISCLOSE'" : "";
    if (pr->on) {
        pgs_sbuf_printf(&q, "SELECT count(*)%s%s", WHERE, filter);
        PGresult *res = PQexecParams(pg, q.buf, 3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            pr->total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!pg_ok(pg, res, PGRES_TUPLES_OK, "counting rows")) {
            free(q.buf);
            return -1;
        }
        q.len = 0;
    }
    /* parameters cannot go into COPY: the values are quoted literals */
    char *lit[3];
    for (int i = 0; i < 3; i++)
        lit[i] = params[i] ? PQescapeLiteral(pg, params[i], strlen(params[i])) : NULL;
    const char *cols = disclosures ? DISCLOSURE_COLS : TRAIL_COLS;
    pgs_sbuf_printf(&q, "COPY (SELECT %s FROM (SELECT %s FROM audit.events WHERE clinic_id = %s",
                    csv ? "*" : "row_to_json(t)::text", cols, lit[0]);
    if (lit[1])
        pgs_sbuf_printf(&q, " AND recorded_at >= %s::timestamptz", lit[1]);
    if (lit[2])
        pgs_sbuf_printf(&q, " AND recorded_at < %s::timestamptz", lit[2]);
    pgs_sbuf_printf(&q, "%s ORDER BY seq) t) TO STDOUT%s", filter,
                    csv ? " (FORMAT csv, HEADER)" : "");
    for (int i = 0; i < 3; i++)
        PQfreemem(lit[i]);
    PGresult *res = PQexec(pg, q.buf);
    free(q.buf);
    if (!pg_ok(pg, res, PGRES_COPY_OUT, "starting the export"))
        return -1;
    char *buf;
    int len, header = csv;
    int werr = 0;
    while ((len = PQgetCopyData(pg, &buf, 0)) > 0) {
        size_t n = csv ? (size_t)len : pgs_audit_export_unescape(buf, (size_t)len);
        if (!werr && fwrite(buf, 1, n, out) != n)
            werr = 1;
        PQfreemem(buf);
        if (header) {
            header = 0; /* the CSV header is a COPY row of its own */
            continue;
        }
        pr->done++;
        progress_show(pr, 0);
    }
    int ok = len == -1 && pg_ok(pg, PQgetResult(pg), PGRES_COMMAND_OK, "exporting");
    PQclear(PQexec(pg, "COMMIT"));
    if (werr || fflush(out) != 0) {
        fprintf(stderr, "pgscribe audit export: write error\n");
        return -1;
    }
    return ok ? 0 : -1;
}

int pgs_audit_export_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clinic", required_argument, NULL, 'C'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},     {"format", required_argument, NULL, 'F'},
        {"disclosures", no_argument, NULL, 'D'},  {"output", required_argument, NULL, 'o'},
        {"progress", no_argument, NULL, 'P'},     {"conninfo", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *params[3] = {NULL, NULL, NULL}, *output = NULL, *conninfo = NULL;
    int csv = 0, disclosures = 0, c;
    progress_t pr = {.tty = isatty(2), .last_pct = -100};
    pr.on = pr.tty;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'C':
            params[0] = optarg;
            break;
        case 'f':
            params[1] = optarg;
            break;
        case 't':
            params[2] = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "ndjson") != 0) {
                fprintf(stderr, "pgscribe audit export: --format is ndjson or csv\n");
                return PGS_EXIT_USAGE;
            }
            csv = strcmp(optarg, "csv") == 0;
            break;
        case 'D':
            disclosures = 1;
            break;
        case 'o':
            output = optarg;
            break;
        case 'P':
            pr.on = 1;
            break;
        case 'c':
            conninfo = optarg;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc || !params[0]) {
        fprintf(stderr, optind < argc ? "pgscribe audit export: unexpected argument\n"
                                      : "pgscribe audit export: --clinic is required\n");
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    PGconn *pg = PQconnectdb(pgs_cli_admin_conninfo(conninfo));
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "pgscribe audit export: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return PGS_EXIT_DATABASE;
    }
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "pgscribe audit export: cannot write %s\n", output);
        PQfinish(pg);
        return PGS_EXIT_FAILURE;
    }
    static char obuf[1 << 16];
    setvbuf(out, obuf, _IOFBF, sizeof(obuf));
    int64_t t0 = pgs_clock_now_us();
    int rc = export_run(pg, params, csv, disclosures, out, &pr);
    progress_show(&pr, 1);
    if (output && fclose(out) != 0)
        rc = -1;
    PQfinish(pg);
    if (rc == 0)
        fprintf(stderr, "exported %" PRId64 " %s of clinic %s in %.2f s\n", pr.done,
                disclosures ? "disclosures" : "rows", params[0],
                (double)(pgs_clock_now_us() - t0) / 1e6);
    return rc == 0 ? PGS_EXIT_OK : PGS_EXIT_FAILURE;
}
