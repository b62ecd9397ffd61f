/* `pgscribe audit archive`: for each month of audit.events older than the
 * retention, oldest first, writes its rows to a gzip-compressed CSV file and
 * a manifest, re-reads and verifies both, and only then retires the month as
 * pgscribe_audit_retention (audit.retire_partition(): boundaries recorded,
 * event ids deleted, partition detached and dropped, in one transaction). */
#include "command/audit_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "command/audit_archive_file.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/duration.h"
#include "common/sbuf.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: pgscribe audit archive [--dry-run] [--dir DIR] [--retention DURATION]\n"
                 "                              [--config PATH] [--conninfo CONNINFO] [--help]\n"
                 "Archives and drops the months of audit.events older than the retention.\n"
                 "\n"
                 "For each monthly partition that ended before now - retention, oldest first:\n"
                 "writes its rows to DIR/audit-events-YYYY-MM.csv.gz and a manifest\n"
                 "DIR/audit-events-YYYY-MM.manifest.json (row count, SHA-256, each clinic's\n"
                 "chain boundaries), re-reads the file and verifies its checksum, row count\n"
                 "and chains, and only then, as pgscribe_audit_retention, records each\n"
                 "clinic's last link in audit.archived_boundaries, deletes the month's event\n"
                 "ids and detaches and drops the partition, in one transaction.\n"
                 "\n"
                 "options:\n"
                 "  --dry-run             print the partitions and row counts, change nothing\n"
                 "  --dir DIR             where archives go (default audit.archive_dir)\n"
                 "  --retention DURATION  keep this much, e.g. 7y, 400d (default audit.retention)\n"
                 "  --config PATH         configuration file (default $PGSCRIBE_CONFIG)\n"
                 "  --conninfo CONNINFO   a role that may read audit.* and is granted\n"
                 "                        pgscribe_audit_retention; default\n"
                 "                        $PGSCRIBE_PG_ADMIN_CONNINFO, then $PGSCRIBE_PG_CONNINFO\n"
                 "  -h, --help            show this help\n"
                 "\n"
                 "exit codes:\n"
                 "  0  every old month archived and dropped (or, with --dry-run, listed)\n"
                 "  1  an archive failed its check or the database refused; that month is kept\n"
                 "  2  bad arguments\n"
                 "  3  invalid configuration\n"
                 "  4  database unreachable\n");
}

/* The months that ended before now - $1 seconds: name, YYYY-MM, bounds. */
static const char *const SQL_OLD_MONTHS =
    "SELECT 'audit.' || quote_ident(p.relname), to_char(p.lo AT TIME ZONE 'UTC', 'YYYY-MM'),"
    " to_char(p.lo AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " to_char(p.hi AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM (SELECT c.relname,"
    " (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]"
    "::timestamptz AS lo,"
    " (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]"
    "::timestamptz AS hi"
    " FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid"
    " WHERE i.inhparent = 'audit.events'::regclass) p"
    " WHERE p.hi <= now() - make_interval(secs => $1::double precision) ORDER BY p.lo";

/* The file's columns (PGS_AUDIT_ARCHIVE_COLUMNS): canonical text, so that the
 * file alone recomputes every hash. */
static const char *const SQL_COPY_COLUMNS =
    "clinic_id, seq, kind, event_id, command_id,"
    " (extract(epoch FROM occurred_at) * 1000000)::bigint AS occurred_us,"
    " (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_us, actor, action, entity,"
    " row_key, columns, outcome, recipient, purpose, description, source, details, source_topic,"
    " source_partition, source_offset, traceparent, encode(prev_hash, 'hex') AS prev_hash,"
    " encode(hash, 'hex') AS hash";

typedef struct {
    char *partition, *month, *from, *to;
} month_t;

static int exec_cmd(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

/* The month's rows are read through audit.events and the month's bounds (the
 * planner keeps to the one partition), so the login role needs SELECT on
 * audit.events only, not on each partition. The bounds come from to_char()
 * above: digits, '-', ':', 'T' and 'Z' only. */
static void month_where(pgs_sbuf_t *sb, const month_t *m)
{
    pgs_sbuf_printf(sb,
                    " FROM audit.events WHERE recorded_at >= '%s'::timestamptz"
                    " AND recorded_at < '%s'::timestamptz",
                    m->from, m->to);
}

static int64_t count_rows(PGconn *pg, const month_t *m)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "SELECT count(*)");
    month_where(&sb, m);
    PGresult *res = PQexec(pg, sb.buf);
    free(sb.buf);
    int64_t n =
        PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return n;
}

/* COPY of the partition into a gzip stream on @p fd. */
static int copy_out(PGconn *pg, const month_t *m, int fd, char *err, size_t errlen)
{
    gzFile gz = gzdopen(dup(fd), "wb6");
    if (!gz) {
        snprintf(err, errlen, "cannot start gzip");
        return -1;
    }
    pgs_sbuf_t sb = {0};
    pgs_sbuf_printf(&sb, "COPY (SELECT %s", SQL_COPY_COLUMNS);
    month_where(&sb, m);
    pgs_sbuf_puts(&sb, " ORDER BY clinic_id, seq) TO STDOUT (FORMAT csv, HEADER)");
    PGresult *res = PQexec(pg, sb.buf);
    free(sb.buf);
    int ok = PQresultStatus(res) == PGRES_COPY_OUT;
    if (!ok)
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
    PQclear(res);
    char *buf;
    int len = -1;
    while (ok && (len = PQgetCopyData(pg, &buf, 0)) > 0) {
        if (gzwrite(gz, buf, (unsigned)len) != len) {
            snprintf(err, errlen, "writing the archive failed");
            ok = 0;
        }
        PQfreemem(buf);
    }
    if (ok) {
        res = PQgetResult(pg);
        ok = len == -1 && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQerrorMessage(pg));
        PQclear(res);
    }
    while ((res = PQgetResult(pg)))
        PQclear(res);
    if (gzclose(gz) != Z_OK && ok) {
        snprintf(err, errlen, "finishing the gzip stream failed");
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Step a: the month's rows, in one snapshot, into @p path (a temporary name,
 * fsync, rename, fsync of the directory). Also reads the row count, the
 * system identifier and the time. */
static int write_archive(PGconn *pg, const month_t *m, const char *path, int64_t *rows,
                         char sysid[32], char created[32], char *err, size_t errlen)
{
    if (exec_cmd(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen) != 0)
        return -1;
    int ok = exec_cmd(pg, "SET LOCAL client_encoding = 'UTF8'", err, errlen) == 0;
    PGresult *res = ok ? PQexec(pg, "SELECT (SELECT system_identifier FROM pg_control_system()),"
                                    " to_char(now() AT TIME ZONE 'UTC',"
                                    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
                       : NULL;
    if (ok && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(sysid, 32, "%s", PQgetvalue(res, 0, 0));
        snprintf(created, 32, "%s", PQgetvalue(res, 0, 1));
    } else if (ok) {
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
        ok = 0;
    }
    PQclear(res);
    if (ok && (*rows = count_rows(pg, m)) < 0) {
        snprintf(err, errlen, "%s", PQerrorMessage(pg));
        ok = 0;
    }
    pgs_sbuf_t tmp = {0};
    pgs_sbuf_printf(&tmp, "%s.tmp", path);
    int fd = ok ? open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640) : -1;
    if (ok && fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp.buf, strerror(errno));
        ok = 0;
    }
    ok = ok && copy_out(pg, m, fd, err, errlen) == 0;
    PQclear(PQexec(pg, ok ? "COMMIT" : "ROLLBACK"));
    if (ok &&
        (fsync(fd) != 0 || rename(tmp.buf, path) != 0 || pgs_audit_archive_sync_dir(path) != 0)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        ok = 0;
    }
    if (fd >= 0)
        close(fd);
    if (!ok)
        unlink(tmp.buf);
    free(tmp.buf);
    return ok ? 0 : -1;
}

/* Step d, as the retention role, in one transaction. */
static int retire(PGconn *pg, const month_t *m, int64_t rows, const uint8_t msha[32], char *err,
                  size_t errlen)
{
    char hex[65], nrows[32];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", msha[i]);
    snprintf(nrows, sizeof(nrows), "%" PRId64, rows);
    if (exec_cmd(pg, "BEGIN", err, errlen) != 0)
        return -1;
    int ok = exec_cmd(pg, "SET LOCAL ROLE pgscribe_audit_retention", err, errlen) == 0 &&
             exec_cmd(pg, "SET LOCAL pgscribe.audit_retention = 'on'", err, errlen) == 0;
    if (ok) {
        const char *params[] = {m->partition, nrows, hex};
        PGresult *res = PQexecParams(pg,
                                     "SELECT audit.retire_partition($1::regclass, $2::bigint,"
                                     " decode($3, 'hex'))",
                                     3, NULL, params, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQerrorMessage(pg));
        PQclear(res);
    }
    if (ok)
        return exec_cmd(pg, "COMMIT", err, errlen);
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

static int archive_month(PGconn *pg, const month_t *m, const char *dir)
{
    char err[512] = "", sysid[32] = "", created[32] = "";
    pgs_sbuf_t data = {0}, name = {0};
    pgs_sbuf_printf(&name, "audit-events-%s.csv.gz", m->month);
    pgs_sbuf_printf(&data, "%s/%s", dir, name.buf);
    char *manifest = pgs_audit_archive_manifest_path(data.buf);
    int64_t rows = 0;
    uint8_t msha[32];
    pgs_audit_archive_scan_t scan = {0};
    int ok = write_archive(pg, m, data.buf, &rows, sysid, created, err, sizeof(err)) == 0;
    /* step b: the manifest from a re-read of the file */
    if (ok && pgs_audit_archive_scan(data.buf, &scan) != 0) {
        snprintf(err, sizeof(err), "%s", scan.problem);
        ok = 0;
    }
    pgs_audit_archive_meta_t meta = {.partition = m->partition,
                                     .month = m->month,
                                     .from = m->from,
                                     .to = m->to,
                                     .file = name.buf,
                                     .system_identifier = sysid,
                                     .created_at = created};
    ok =
        ok && pgs_audit_archive_write_manifest(manifest, &meta, &scan, msha, err, sizeof(err)) == 0;
    /* step c: the file against its manifest and the partition's count */
    ok = ok && pgs_audit_archive_check(data.buf, manifest, rows, err, sizeof(err)) == 0;
    ok = ok && retire(pg, m, rows, msha, err, sizeof(err)) == 0;
    if (ok)
        printf("archived %s: %" PRId64 " rows of %zu clinics to %s; partition dropped\n",
               m->partition, rows, scan.nclinics, data.buf);
    else
        fprintf(stderr, "pgscribe audit archive: %s: %s%s", m->partition, err,
                err[0] && err[strlen(err) - 1] == '\n' ? "" : "\n");
    pgs_audit_archive_scan_free(&scan);
    free(manifest);
    free(data.buf);
    free(name.buf);
    return ok ? 0 : -1;
}

static int archive_run(PGconn *pg, int64_t retention_s, const char *dir, int dry_run)
{
    char secs[32];
    snprintf(secs, sizeof(secs), "%" PRId64, retention_s);
    const char *params[] = {secs};
    PGresult *res = PQexecParams(pg, SQL_OLD_MONTHS, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscribe audit archive: listing partitions: %s", PQerrorMessage(pg));
        PQclear(res);
        return PGS_EXIT_FAILURE;
    }
    int n = PQntuples(res), rc = PGS_EXIT_OK;
    if (n == 0)
        printf("no month of audit.events ended before the retention\n");
    for (int i = 0; i < n && rc == PGS_EXIT_OK; i++) {
        month_t m = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                     PQgetvalue(res, i, 3)};
        if (dry_run) {
            int64_t rows = count_rows(pg, &m);
            if (rows < 0) {
                fprintf(stderr, "pgscribe audit archive: %s: %s", m.partition, PQerrorMessage(pg));
                rc = PGS_EXIT_FAILURE;
            } else {
                printf("would archive %s (%s to %s): %" PRId64
                       " rows to %s/audit-events-%s.csv.gz\n",
                       m.partition, m.from, m.to, rows, dir, m.month);
            }
        } else if (archive_month(pg, &m, dir) != 0) {
            rc = PGS_EXIT_FAILURE;
        }
    }
    if (dry_run && rc == PGS_EXIT_OK)
        printf("dry run: %d months, nothing changed\n", n);
    PQclear(res);
    return rc;
}

int pgs_audit_archive_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"retention", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'C'},
        {"conninfo", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *retention = NULL, *config = NULL, *conninfo = NULL;
    int dry_run = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "nd:r:C:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            dry_run = 1;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'r':
            retention = optarg;
            break;
        case 'C':
            config = optarg;
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
    if (optind < argc) {
        fprintf(stderr, "pgscribe audit archive: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(config);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    int rc = PGS_EXIT_OK;
    int64_t retention_s = 0;
    const char *ret_text = retention ? retention : pgs_config_str(cfg, "audit.retention");
    if (pgs_duration_parse(ret_text, &retention_s) != 0) {
        fprintf(stderr,
                "pgscribe audit archive: retention '%s': expected a number and s, m, h, d, w or "
                "y\n",
                ret_text);
        rc = retention ? PGS_EXIT_USAGE : PGS_EXIT_CONFIG;
    }
    char *dir_copy = strdup(dir ? dir : pgs_config_str(cfg, "audit.archive_dir"));
    pgs_config_free(cfg);
    if (rc == PGS_EXIT_OK && !dry_run && (mkdir(dir_copy, 0750) != 0 && errno != EEXIST)) {
        fprintf(stderr, "pgscribe audit archive: %s: %s\n", dir_copy, strerror(errno));
        rc = PGS_EXIT_FAILURE;
    }
    PGconn *pg = rc == PGS_EXIT_OK ? PQconnectdb(pgs_cli_admin_conninfo(conninfo)) : NULL;
    if (pg && PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host and user, never the password */
        fprintf(stderr, "pgscribe audit archive: cannot connect: %s", PQerrorMessage(pg));
        rc = PGS_EXIT_DATABASE;
    } else if (pg) {
        rc = archive_run(pg, retention_s, dir_copy, dry_run);
    }
    PQfinish(pg);
    free(dir_copy);
    return rc;
}

int pgs_audit_archive_verify_main(const char *path)
{
    char *manifest = pgs_audit_archive_manifest_path(path);
    char problem[512] = "";
    int rc = pgs_audit_archive_check(path, manifest, -1, problem, sizeof(problem));
    if (rc == 0)
        printf("verified archive %s against %s\n", path, manifest);
    else
        printf("broken: archive %s: %s\n", path, problem);
    free(manifest);
    return rc == 0 ? PGS_EXIT_OK : PGS_EXIT_FAILURE;
}
