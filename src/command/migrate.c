/* `pgscribe migrate`: applies schemas/sql/NNNN_*.sql in order, each once, in one
 * transaction with its bookkeeping row, refusing files changed after applying. */
#include "command/migrate.h"
#include "common/cli.h"
#include "run/pgnotice.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "pgscribe" in ASCII: one lock for every migrate run against a cluster, so
 * a second run waits for the first instead of racing it. */
#define MIGRATE_LOCK_KEY "8099004556563620453"

#define DEFAULT_DIR "schemas/sql"

typedef struct {
    int version;
    char *name;
    char *checksum;
} applied_t;

int pgs_migrate_parse_name(const char *name, int *version)
{
    const char *p = name;
    long v = 0;
    size_t digits = 0;
    size_t len = strlen(name);

    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        p++;
        if (++digits > 9)
            return -1;
    }
    if (digits == 0 || *p != '_')
        return -1;
    p++;
    /* at least one character of name between '_' and ".sql" */
    if (len < 4 || strcmp(name + len - 4, ".sql") != 0 || (size_t)(p - name) + 4 >= len)
        return -1;
    *version = (int)v;
    return 0;
}

static int file_cmp(const void *a, const void *b)
{
    const pgs_migrate_file_t *fa = a, *fb = b;
    return (fa->version > fb->version) - (fa->version < fb->version);
}

void pgs_migrate_files_free(pgs_migrate_file_t *files, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(files[i].name);
        free(files[i].path);
    }
    free(files);
}

int pgs_migrate_scan(const char *dir, pgs_migrate_file_t **files, size_t *count, char *errstr,
                     size_t errstr_size)
{
    DIR *d = opendir(dir);
    pgs_migrate_file_t *list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;

    if (!d) {
        snprintf(errstr, errstr_size, "cannot open migrations folder %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        int version;
        struct stat st;
        char *path;

        if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue;
        if (pgs_migrate_parse_name(de->d_name, &version) != 0) {
            snprintf(errstr, errstr_size, "%s/%s: not named NNNN_name.sql", dir, de->d_name);
            goto fail;
        }
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(errstr, errstr_size, "%s: not a regular file", path);
            free(path);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pgs_migrate_file_t *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                free(path);
                snprintf(errstr, errstr_size, "out of memory");
                goto fail;
            }
            list = nl;
            cap = ncap;
        }
        list[n].version = version;
        list[n].path = path;
        list[n].name = strdup(de->d_name);
        n++;
        if (!list[n - 1].name) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail;
        }
    }
    closedir(d);
    d = NULL;

    if (n > 0)
        qsort(list, n, sizeof(*list), file_cmp);
    for (size_t i = 1; i < n; i++) {
        if (list[i].version == list[i - 1].version) {
            snprintf(errstr, errstr_size, "%s and %s have the same version %d", list[i - 1].name,
                     list[i].name, list[i].version);
            goto fail;
        }
    }
    *files = list;
    *count = n;
    return 0;

fail:
    if (d)
        closedir(d);
    pgs_migrate_files_free(list, n);
    return -1;
}

int pgs_migrate_checksum(const void *data, size_t len, char out[PGS_MIGRATE_CHECKSUM_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Whole file, NUL-terminated for PQexec; a NUL inside would cut it short. */
static char *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;

    if (!f) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 16384);
            if (!nb) {
                snprintf(errstr, errstr_size, "out of memory reading %s", path);
                goto fail;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        snprintf(errstr, errstr_size, "%s contains a NUL byte", path);
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;

fail:
    fclose(f);
    free(buf);
    return NULL;
}

static int exec_ok(PGconn *conn, const char *sql, const char *what)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "pgscribe migrate: %s: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static void applied_free(applied_t *applied, int n)
{
    for (int i = 0; i < n; i++) {
        free(applied[i].name);
        free(applied[i].checksum);
    }
    free(applied);
}

/* Reads pgscribe.schema_migrations; a missing table means nothing applied. */
static int load_applied(PGconn *conn, applied_t **out, int *count)
{
    PGresult *res;
    applied_t *applied = NULL;
    int n;

    *out = NULL;
    *count = 0;
    res = PQexec(conn, "SELECT to_regclass('pgscribe.schema_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscribe migrate: reading schema_migrations: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        return 0;
    }
    PQclear(res);

    res = PQexec(conn, "SELECT version, name, checksum FROM pgscribe.schema_migrations "
                       "ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgscribe migrate: reading schema_migrations: %s",
                PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    applied = calloc(n > 0 ? (size_t)n : 1, sizeof(*applied));
    if (!applied)
        goto oom;
    for (int i = 0; i < n; i++) {
        applied[i].version = atoi(PQgetvalue(res, i, 0));
        applied[i].name = strdup(PQgetvalue(res, i, 1));
        applied[i].checksum = strdup(PQgetvalue(res, i, 2));
        if (!applied[i].name || !applied[i].checksum) {
            applied_free(applied, i + 1);
            goto oom;
        }
    }
    PQclear(res);
    *out = applied;
    *count = n;
    return 0;

oom:
    PQclear(res);
    fprintf(stderr, "pgscribe migrate: out of memory\n");
    return -1;
}

static const applied_t *find_applied(const applied_t *applied, int n, int version)
{
    for (int i = 0; i < n; i++)
        if (applied[i].version == version)
            return &applied[i];
    return NULL;
}

/* The file and its bookkeeping row commit together or not at all. */
/* Runs one migration and records it, in a transaction of its own; with
 * @p dry, inside the caller's transaction, which the caller rolls back. */
static int apply_one(PGconn *conn, const pgs_migrate_file_t *file, const char *sql,
                     const char *checksum, int dry)
{
    char version[16];
    const char *params[3] = {version, file->name, checksum};
    PGresult *res;

    if (!dry && exec_ok(conn, "BEGIN", "BEGIN") != 0)
        return -1;
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
        PQresultStatus(res) != PGRES_EMPTY_QUERY) {
        fprintf(stderr, "pgscribe migrate: %s failed: %s", file->name, PQresultErrorMessage(res));
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        fprintf(stderr,
                "pgscribe migrate: %s ended the transaction: a migration must not contain "
                "BEGIN, COMMIT or ROLLBACK\n",
                file->name);
        goto rollback;
    }
    snprintf(version, sizeof(version), "%d", file->version);
    res = PQexecParams(conn,
                       "INSERT INTO pgscribe.schema_migrations (version, name, checksum) "
                       "VALUES ($1::int, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgscribe migrate: recording %s: %s", file->name,
                PQresultErrorMessage(res));
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    return dry ? 0 : exec_ok(conn, "COMMIT", file->name);

rollback:
    if (!dry && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe migrate [--dir DIR] [--conninfo CONNINFO] [--status | --dry-run]\n"
            "                        [--help]\n"
            "Applies the versioned SQL migrations, each once.\n"
            "\n"
            "Applies DIR/NNNN_name.sql (default " DEFAULT_DIR ") in version order, each once,\n"
            "in one transaction with its row in pgscribe.schema_migrations. A file changed\n"
            "after it was applied (SHA-256 differs) stops the run before anything is\n"
            "applied. Concurrent runs wait for each other (advisory lock).\n"
            "\n"
            "options:\n"
            "  --dir DIR            migrations folder\n"
            "  --conninfo CONNINFO  libpq connection string of a role that may create\n"
            "                       schemas and roles; default $PGSCRIBE_PG_ADMIN_CONNINFO,\n"
            "                       then $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
            "  --status             list each version as applied, pending or changed;\n"
            "                       exits 1 if one is changed\n"
            "  --dry-run            run every pending migration in one transaction, then\n"
            "                       roll it back: shows what would be applied and that it\n"
            "                       runs on this database (its locks are taken meanwhile)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  ok\n"
            "  1  failure (a migration failed, or a changed file)\n"
            "  2  bad arguments\n"
            "  4  database unreachable\n");
}

/* The checksum of every migration file, computed once, with its text. */
typedef struct {
    char *sql;
    char checksum[PGS_MIGRATE_CHECKSUM_LEN];
} loaded_t;

static int load_files(const pgs_migrate_file_t *files, size_t n, loaded_t *loaded)
{
    char errstr[512];

    for (size_t i = 0; i < n; i++) {
        size_t len;
        loaded[i].sql = read_file(files[i].path, &len, errstr, sizeof(errstr));
        if (!loaded[i].sql) {
            fprintf(stderr, "pgscribe migrate: %s\n", errstr);
            return -1;
        }
        if (pgs_migrate_checksum(loaded[i].sql, len, loaded[i].checksum) != 0) {
            fprintf(stderr, "pgscribe migrate: SHA-256 of %s failed\n", files[i].name);
            return -1;
        }
    }
    return 0;
}

static int print_status(const pgs_migrate_file_t *files, size_t n, const loaded_t *loaded,
                        const applied_t *applied, int napplied)
{
    int changed = 0;

    for (size_t i = 0; i < n; i++) {
        const applied_t *a = find_applied(applied, napplied, files[i].version);
        const char *state = "pending";
        if (a) {
            state = strcmp(a->checksum, loaded[i].checksum) == 0 ? "applied" : "changed";
            changed += state[0] == 'c';
        }
        printf("%04d  %-8s %s\n", files[i].version, state, files[i].name);
    }
    /* Applied once, its file gone since: worth showing, not an error. */
    for (int i = 0; i < napplied; i++) {
        int present = 0;
        for (size_t j = 0; j < n; j++)
            present |= files[j].version == applied[i].version;
        if (!present)
            printf("%04d  %-8s %s (file missing)\n", applied[i].version, "applied",
                   applied[i].name);
    }
    return changed ? PGS_EXIT_FAILURE : PGS_EXIT_OK;
}

int pgs_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'}, {"conninfo", required_argument, NULL, 'c'},
        {"status", no_argument, NULL, 's'},    {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *dir = DEFAULT_DIR;
    const char *conninfo = NULL;
    int status_only = 0, dry = 0;
    int rc = PGS_EXIT_FAILURE;
    int opt;
    char errstr[512];
    pgs_migrate_file_t *files = NULL;
    size_t nfiles = 0;
    loaded_t *loaded = NULL;
    applied_t *applied = NULL;
    int napplied = 0;
    PGconn *conn = NULL;
    int nnew = 0, nold = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:c:sh", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            conninfo = optarg;
            break;
        case 's':
            status_only = 1;
            break;
        case 'n':
            dry = 1;
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (status_only && dry) {
        fprintf(stderr, "pgscribe migrate: --status and --dry-run exclude each other\n");
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "pgscribe migrate: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    conninfo = pgs_cli_admin_conninfo(conninfo);

    /* Files first: a broken folder is reported without touching the database. */
    if (pgs_migrate_scan(dir, &files, &nfiles, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "pgscribe migrate: %s\n", errstr);
        return PGS_EXIT_FAILURE;
    }
    loaded = calloc(nfiles ? nfiles : 1, sizeof(*loaded));
    if (!loaded) {
        fprintf(stderr, "pgscribe migrate: out of memory\n");
        goto out;
    }
    if (load_files(files, nfiles, loaded) != 0)
        goto out;

    /* PQerrorMessage names host and port at most, never the password. */
    conn = PQconnectdb(conninfo);
    pgs_pgnotice_attach(conn); /* warnings as log lines, without their text */
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pgscribe migrate: cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        rc = PGS_EXIT_DATABASE;
        goto out;
    }
    /* IF NOT EXISTS notices are noise for the operator. */
    if (exec_ok(conn, "SET client_min_messages = warning", "session setup") != 0) {
        rc = PGS_EXIT_DATABASE;
        goto out;
    }

    if (status_only) {
        if (load_applied(conn, &applied, &napplied) != 0) {
            rc = PGS_EXIT_DATABASE;
            goto out;
        }
        rc = print_status(files, nfiles, loaded, applied, napplied);
        goto out;
    }

    if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "advisory lock") != 0 ||
        exec_ok(conn,
                "CREATE SCHEMA IF NOT EXISTS pgscribe;"
                "CREATE TABLE IF NOT EXISTS pgscribe.schema_migrations ("
                " version int PRIMARY KEY,"
                " name text NOT NULL,"
                " checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                "creating pgscribe.schema_migrations") != 0 ||
        load_applied(conn, &applied, &napplied) != 0) {
        rc = PGS_EXIT_DATABASE;
        goto out;
    }

    /* Every applied file is verified before anything new runs: a changed
     * history means the new files were written against a schema that may
     * not be the one in this database. */
    for (size_t i = 0; i < nfiles; i++) {
        const applied_t *a = find_applied(applied, napplied, files[i].version);
        if (a && strcmp(a->checksum, loaded[i].checksum) != 0) {
            fprintf(stderr,
                    "pgscribe migrate: %s was changed after it was applied (checksum differs "
                    "from the one recorded for version %d); nothing applied\n",
                    files[i].path, files[i].version);
            goto out;
        }
    }
    if (dry && exec_ok(conn, "BEGIN", "BEGIN") != 0)
        goto out;
    for (size_t i = 0; i < nfiles; i++) {
        if (find_applied(applied, napplied, files[i].version)) {
            nold++;
            continue;
        }
        if (apply_one(conn, &files[i], loaded[i].sql, loaded[i].checksum, dry) != 0) {
            printf("migrations: %d %s, %d already applied, stopped at %s\n", nnew,
                   dry ? "would apply" : "applied", nold, files[i].name);
            goto out;
        }
        printf("%s %s\n", dry ? "would apply" : "applied", files[i].name);
        fflush(stdout);
        nnew++;
    }
    if (dry) {
        if (exec_ok(conn, "ROLLBACK", "ROLLBACK") != 0)
            goto out;
        printf("migrations (dry run, rolled back): %d would apply, %d already applied\n", nnew,
               nold);
    } else {
        printf("migrations: %d applied, %d already applied\n", nnew, nold);
    }
    rc = PGS_EXIT_OK;

out:
    /* Closing the session releases the advisory lock. */
    if (conn)
        PQfinish(conn);
    applied_free(applied, napplied);
    if (loaded)
        for (size_t i = 0; i < nfiles; i++)
            free(loaded[i].sql);
    free(loaded);
    pgs_migrate_files_free(files, nfiles);
    return rc;
}
