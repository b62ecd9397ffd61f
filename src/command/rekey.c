/* `pgscribe rekey`: re-encrypts the field-encrypted values still on an older
 * key under the current key of their clinic, in bounded batches of one
 * transaction each, under the clinic wall (pgscribe.clinic_id set, as the
 * worker's transactions). Each value is swapped only if it is still the
 * ciphertext read (compare-and-swap), so a live write in between is never
 * reverted. Progress is kept in pgscribe.rekey_progress: an interrupted run
 * resumes after the last finished batch; a last pass from the start picks up
 * what live writes under an old key left behind. See docs/keys.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command/keys_table.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/fieldcrypt.h"
#include "common/keyring.h"
#include "common/sbuf.h"

#define WHO           "pgscribe rekey"
#define DEFAULT_BATCH 500

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: pgscribe rekey [--batch N] [--clinic C] [--schema S] [--keyring F]\n"
        "                      [--config FILE] [--conninfo CONNINFO] [--progress|--no-progress]\n"
        "Re-encrypts field-encrypted values not on their clinic's current field key.\n"
        "\n"
        "Run it after `pgscribe keys rotate` and a SIGHUP to the workers; it may run\n"
        "while they write. N rows per transaction, under the clinic wall; a value is\n"
        "replaced only if it is still the one read. Killed, it resumes where its last\n"
        "batch ended (pgscribe.rekey_progress).\n"
        "\n"
        "options:\n"
        "  --batch N            rows per transaction (default %d, 1..100000)\n"
        "  --clinic C           only this clinic\n"
        "  --schema S           target schema (default pg.schema)\n"
        "  --keyring F          keyring file (default: crypto.keyring of the config)\n"
        "  --conninfo CONNINFO  default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
        "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
        "  --progress           a progress bar (default when stderr is a terminal);\n"
        "                       --no-progress prints a line per batch instead\n"
        "\n"
        "exit codes:\n"
        "  0  every value is on its clinic's current key\n"
        "  1  a value did not decrypt (left as it is, named on stderr), a clinic has no\n"
        "     current field key, or a database error\n"
        "  2  bad arguments\n"
        "  3  invalid configuration or keyring\n"
        "  4  database unreachable\n",
        DEFAULT_BATCH);
}

typedef struct {
    PGconn *pg;
    const PgsKeyring *ring;
    int batch, bar;
    long total_done, failed;
} rekey_t;

/* The SQLSTATE of the last failure: a deadlock with a live write is retried. */
static char last_state[6];

static int pq_fail(PGconn *pg, const char *what, PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(last_state, sizeof(last_state), "%s", st ? st : "");
    if (strcmp(last_state, "40P01") == 0 || strcmp(last_state, "40001") == 0) {
        PQclear(res);
        PQclear(PQexec(pg, "ROLLBACK"));
        return -1; /* retried quietly */
    }
    const char *m = PQerrorMessage(pg);
    fprintf(stderr, "%s: %s: %.*s\n", WHO, what, (int)strcspn(m, "\n"), m);
    PQclear(res);
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

static PGresult *exec_params(PGconn *pg, const char *sql, int n, const char *const *v)
{
    return PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
}

/* The rows of @p clinic after @p cursor with a sealed value on a key other
 * than @p target: row key, pk values as text, each sealed column as text. */
static char *batch_sql(const pgs_ktable_t *t, const int *pk, int npk, const int *seal, int nseal)
{
    pgs_sbuf_t sb = {0}, rk = {0};
    pgs_ktable_row_key_sql(&rk, t, NULL);
    pgs_sbuf_printf(&sb, "SELECT %s AS rk", rk.buf);
    for (int k = 0; k < npk; k++) {
        pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t->cols[pk[k]].name, '"');
        pgs_sbuf_puts(&sb, "::text");
    }
    for (int j = 0; j < nseal; j++) {
        pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t->cols[seal[j]].name, '"');
        pgs_sbuf_puts(&sb, "::text");
    }
    pgs_sbuf_puts(&sb, " FROM ");
    pgs_ktable_ident(&sb, t);
    pgs_sbuf_printf(
        &sb, " WHERE clinic_id = $1 AND ($3::text IS NULL OR %s COLLATE \"C\" > $3) AND (", rk.buf);
    for (int j = 0; j < nseal; j++) {
        pgs_sbuf_puts(&sb, j ? " OR pgscribe.envelope_key_id(" : "pgscribe.envelope_key_id(");
        pgs_sbuf_quoted(&sb, t->cols[seal[j]].name, '"');
        pgs_sbuf_puts(&sb, ") <> $2::bigint");
    }
    pgs_sbuf_printf(&sb, ") ORDER BY %s COLLATE \"C\" LIMIT $4::int", rk.buf);
    free(rk.buf);
    return sb.buf;
}

/* UPDATE of one column, if it still holds the ciphertext read. */
static char *swap_sql(const pgs_ktable_t *t, const pgs_ktcol_t *c, const int *pk, int npk)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "UPDATE ");
    pgs_ktable_ident(&sb, t);
    pgs_sbuf_puts(&sb, " SET ");
    pgs_sbuf_quoted(&sb, c->name, '"');
    pgs_sbuf_puts(&sb, " = $1 WHERE ");
    pgs_sbuf_quoted(&sb, c->name, '"');
    pgs_sbuf_puts(&sb, " = $2 AND clinic_id = $3");
    for (int k = 0; k < npk; k++) {
        pgs_sbuf_puts(&sb, " AND ");
        pgs_sbuf_quoted(&sb, t->cols[pk[k]].name, '"');
        pgs_sbuf_printf(&sb, " = $%d::%s", 4 + k, t->cols[pk[k]].type);
    }
    return sb.buf;
}

/* Re-encrypts one value of row @p r; 1 swapped, 0 not needed or lost to a
 * concurrent write, -1 a database error, -2 it does not decrypt. */
static int swap_value(rekey_t *rk, const pgs_ktable_t *t, const pgs_ktcol_t *c, const char *sql,
                      int npk, PGresult *rows, int r, int field, const char *clinic,
                      const PgsKey *target)
{
    if (PQgetisnull(rows, r, field))
        return 0;
    size_t len = 0, plen = 0;
    unsigned char *env = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, r, field), &len);
    if (!env)
        return -1;
    if (pgs_envelope_key_id(env, len) == target->id) {
        PQfreemem(env);
        return 0;
    }
    char entity[512], err[256];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    PgsFieldContext ctx = {clinic, entity, c->name, PQgetvalue(rows, r, 0)};
    unsigned char *plain = malloc(len + 1), *out = malloc(len + PGS_ENVELOPE_OVERHEAD);
    int rc = 0;
    size_t n = 0;
    if (pgs_field_decrypt(rk->ring, &ctx, env, len, plain, &plen, err, sizeof(err)) < 0) {
        /* the row key names a row, never a value */
        fprintf(stderr, WHO ": %s.%s of clinic %s row %s: %s (left as it is)\n", entity, c->name,
                clinic, PQgetvalue(rows, r, 0), err);
        rc = -2;
    } else if ((n = pgs_field_encrypt(target, &ctx, plain, plen, out)) == 0) {
        fprintf(stderr, WHO ": %s.%s: encryption failed\n", entity, c->name);
        rc = -1;
    } else {
        const char *vals[4 + 64] = {(const char *)out, (const char *)env, clinic};
        int lens[4 + 64] = {(int)n, (int)len}, fmts[4 + 64] = {1, 1};
        for (int k = 0; k < npk && k < 64; k++)
            vals[3 + k] = PQgetvalue(rows, r, 1 + k);
        PGresult *res = PQexecParams(rk->pg, sql, 3 + npk, NULL, vals, lens, fmts, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = pq_fail(rk->pg, "updating a row", res);
        else {
            rc = atoi(PQcmdTuples(res)) > 0;
            PQclear(res);
        }
    }
    memset(plain, 0, len + 1);
    free(plain);
    free(out);
    PQfreemem(env);
    return rc;
}

static void progress(rekey_t *rk, const pgs_ktable_t *t, const char *clinic, long done, long todo)
{
    if (rk->bar) {
        int w = todo > 0 ? (int)(20 * (done > todo ? todo : done) / todo) : 20;
        fprintf(stderr, "\r[%-20.*s] %ld/%ld %s.%s %s   ", w, "####################", done, todo,
                t->schema, t->table, clinic);
    } else {
        fprintf(stderr, WHO ": %s.%s clinic %s: %ld of %ld row(s) re-encrypted\n", t->schema,
                t->table, clinic, done, todo);
    }
}

/* Saves the cursor (NULL: finished) of one (table, clinic). */
static int save_progress(rekey_t *rk, const pgs_ktable_t *t, const char *clinic, uint32_t target,
                         const char *cursor, long rows)
{
    char tk[16], n[24];
    snprintf(tk, sizeof(tk), "%u", target);
    snprintf(n, sizeof(n), "%ld", rows);
    const char *v[6] = {t->schema, t->table, clinic, tk, cursor, n};
    PGresult *res =
        exec_params(rk->pg,
                    "INSERT INTO pgscribe.rekey_progress AS p (schema_name, table_name, clinic_id,"
                    " target_key, last_row_key, rows_done, finished_at)"
                    " VALUES ($1, $2, $3, $4::bigint, $5::text, $6::bigint,"
                    "  CASE WHEN $5::text IS NULL THEN now() END)"
                    " ON CONFLICT (schema_name, table_name, clinic_id) DO UPDATE SET"
                    " target_key = excluded.target_key, last_row_key = excluded.last_row_key,"
                    " rows_done = CASE WHEN p.target_key = excluded.target_key"
                    "   THEN p.rows_done + excluded.rows_done ELSE excluded.rows_done END,"
                    " updated_at = now(), finished_at = excluded.finished_at",
                    6, v);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pq_fail(rk->pg, "saving progress", res);
    PQclear(res);
    return 0;
}

/* One clinic of one table: batches from the saved cursor to the end, then
 * passes from the start until one finds nothing left. */
static int rekey_clinic(rekey_t *rk, const pgs_ktable_t *t, const int *pk, int npk, const int *seal,
                        int nseal, const char *clinic)
{
    const PgsKey *target = pgs_keyring_current(rk->ring, PGS_KEY_FIELD, clinic);
    if (!target) {
        fprintf(stderr, WHO ": clinic %s has no current field key\n", clinic);
        return -1;
    }
    char tk[16], lim[16];
    snprintf(tk, sizeof(tk), "%u", target->id);
    snprintf(lim, sizeof(lim), "%d", rk->batch);
    /* where an interrupted run for the same target key stopped */
    char *cursor = NULL;
    const char *pv[4] = {t->schema, t->table, clinic, tk};
    PGresult *res = exec_params(rk->pg,
                                "SELECT last_row_key FROM pgscribe.rekey_progress WHERE"
                                " schema_name = $1 AND table_name = $2 AND clinic_id = $3"
                                " AND target_key = $4::bigint AND last_row_key IS NOT NULL",
                                4, pv);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        cursor = strdup(PQgetvalue(res, 0, 0));
        fprintf(stderr, WHO ": %s.%s clinic %s: resuming after a saved position\n", t->schema,
                t->table, clinic);
    }
    PQclear(res);
    char *sel = batch_sql(t, pk, npk, seal, nseal);
    char **swaps = calloc((size_t)nseal, sizeof(*swaps));
    for (int j = 0; j < nseal; j++)
        swaps[j] = swap_sql(t, &t->cols[seal[j]], pk, npk);
    /* what is left, for the progress report */
    long todo = 0, done = 0, pass_done = 0;
    const char *cv[4] = {clinic, tk, NULL, "2147483647"};
    res = exec_params(rk->pg, "BEGIN", 0, NULL);
    PQclear(res);
    const char *gv[1] = {clinic};
    PQclear(exec_params(rk->pg, "SELECT set_config('pgscribe.clinic_id', $1, true)", 1, gv));
    pgs_sbuf_t cnt = {0};
    pgs_sbuf_printf(&cnt, "SELECT count(*) FROM (%s) s", sel);
    res = exec_params(rk->pg, cnt.buf, 4, cv);
    free(cnt.buf);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        todo = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQclear(PQexec(rk->pg, "COMMIT"));
    int rc = 0, from_start = cursor == NULL, retries = 0;
    for (;;) {
        if (PQresultStatus(res = PQexec(rk->pg, "BEGIN")) != PGRES_COMMAND_OK) {
            rc = pq_fail(rk->pg, "BEGIN", res);
            break;
        }
        PQclear(res);
        res = exec_params(rk->pg, "SELECT set_config('pgscribe.clinic_id', $1, true)", 1, gv);
        PQclear(res);
        const char *bv[4] = {clinic, tk, cursor, lim};
        PGresult *rows = exec_params(rk->pg, sel, 4, bv);
        if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
            rc = pq_fail(rk->pg, "reading a batch", rows);
            break;
        }
        int nrows = PQntuples(rows);
        long swapped = 0;
        for (int r = 0; r < nrows && rc == 0; r++) {
            int row_swapped = 0;
            for (int j = 0; j < nseal && rc == 0; j++) {
                int s = swap_value(rk, t, &t->cols[seal[j]], swaps[j], npk, rows, r, 1 + npk + j,
                                   clinic, target);
                if (s == -1)
                    rc = -1;
                else if (s == -2)
                    rk->failed++;
                else
                    row_swapped |= s;
            }
            swapped += row_swapped;
        }
        char *last = nrows > 0 ? strdup(PQgetvalue(rows, nrows - 1, 0)) : NULL;
        PQclear(rows);
        if (rc != 0) {
            free(last);
            if ((strcmp(last_state, "40P01") == 0 || strcmp(last_state, "40001") == 0) &&
                retries++ < 20) {
                last_state[0] = '\0';
                rc = 0; /* a deadlock with a live write: the batch again */
                continue;
            }
            break; /* rolled back: the batch is done again next time */
        }
        int end = nrows < rk->batch;
        if (save_progress(rk, t, clinic, target->id, end ? NULL : last, swapped) != 0) {
            free(last);
            rc = -1;
            break;
        }
        res = PQexec(rk->pg, "COMMIT");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            free(last);
            rc = pq_fail(rk->pg, "COMMIT", res);
            break;
        }
        PQclear(res);
        free(cursor);
        cursor = end ? NULL : last;
        if (end)
            free(last);
        done += swapped;
        pass_done += swapped;
        rk->total_done += swapped;
        progress(rk, t, clinic, done, todo);
        if (end) {
            /* a pass that began mid-way, or changed something, is followed
             * by one from the start: a live write sealed before the workers'
             * SIGHUP may have landed behind the cursor */
            if (from_start && pass_done == 0)
                break;
            if (rk->failed > 0 && pass_done == 0)
                break; /* only undecryptable values left */
            from_start = 1;
            pass_done = 0;
        }
    }
    if (rk->bar)
        fputc('\n', stderr);
    for (int j = 0; j < nseal; j++)
        free(swaps[j]);
    free(swaps);
    free(sel);
    free(cursor);
    return rc;
}

static int rekey_table(rekey_t *rk, const char *schema, const char *table, const char *only)
{
    char err[512];
    pgs_ktable_t t;
    if (pgs_ktable_load(rk->pg, schema, table, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        return -1;
    }
    int *pk = calloc((size_t)t.ncols, sizeof(int)), *seal = calloc((size_t)t.ncols, sizeof(int));
    int npk = 0, nseal = 0, rc = 0;
    for (int pos = 1; pos <= t.ncols; pos++)
        for (int i = 0; i < t.ncols; i++)
            if (t.cols[i].pk_pos == pos && strcmp(t.cols[i].name, "clinic_id") != 0)
                pk[npk++] = i;
    for (int i = 0; i < t.ncols; i++)
        if (t.cols[i].sealed)
            seal[nseal++] = i;
    PGresult *clinics = NULL;
    if (nseal > 0) {
        pgs_sbuf_t sb = {0};
        pgs_sbuf_puts(&sb, "SELECT DISTINCT clinic_id FROM ");
        pgs_ktable_ident(&sb, &t);
        pgs_sbuf_puts(&sb, " WHERE $1::text IS NULL OR clinic_id = $1 ORDER BY 1");
        const char *v[1] = {only};
        clinics = exec_params(rk->pg, sb.buf, 1, v);
        free(sb.buf);
        if (PQresultStatus(clinics) != PGRES_TUPLES_OK)
            rc = pq_fail(rk->pg, "listing the clinics", clinics), clinics = NULL;
    }
    for (int i = 0; clinics && i < PQntuples(clinics) && rc == 0; i++)
        rc = rekey_clinic(rk, &t, pk, npk, seal, nseal, PQgetvalue(clinics, i, 0));
    PQclear(clinics);
    free(pk);
    free(seal);
    pgs_ktable_free(&t);
    return rc;
}

int pgs_cmd_rekey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"batch", required_argument, NULL, 'b'},  {"clinic", required_argument, NULL, 'l'},
        {"schema", required_argument, NULL, 's'}, {"keyring", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'C'}, {"conninfo", required_argument, NULL, 'c'},
        {"progress", no_argument, NULL, 'P'},     {"no-progress", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *clinic = NULL, *schema = NULL, *keyring = NULL, *config = NULL, *conninfo = NULL;
    rekey_t rk = {.batch = DEFAULT_BATCH, .bar = isatty(2)};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, WHO ": --batch must be 1..100000\n");
                return PGS_EXIT_USAGE;
            }
            rk.batch = (int)v;
            break;
        }
        case 'l':
            clinic = optarg;
            break;
        case 's':
            schema = optarg;
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
            rk.bar = 1;
            break;
        case 'N':
            rk.bar = 0;
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
        fprintf(stderr, WHO ": unexpected argument\n");
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = NULL;
    if (pgs_cli_config_path(config) && !(cfg = pgs_cli_load_config(config)))
        return PGS_EXIT_CONFIG;
    if (!keyring && cfg)
        keyring = pgs_config_str(cfg, "crypto.keyring");
    if (!schema)
        schema = cfg ? pgs_config_str(cfg, "pg.schema") : "clinic";
    char err[512];
    PgsKeyring *ring = pgs_ktable_keyring(keyring, err, sizeof(err));
    if (!ring) {
        fprintf(stderr, WHO ": %s\n", err);
        pgs_config_free(cfg);
        return PGS_EXIT_CONFIG;
    }
    rk.ring = ring;
    int rc = PGS_EXIT_OK;
    rk.pg = pgs_ktable_connect(pgs_cli_admin_conninfo(conninfo), WHO);
    PGresult *tabs = NULL;
    if (!rk.pg)
        rc = PGS_EXIT_DATABASE;
    else if (!(tabs = pgs_ktable_phi_tables(rk.pg, schema, err, sizeof(err)))) {
        fprintf(stderr, WHO ": %s\n", err);
        rc = PGS_EXIT_FAILURE;
    }
    for (int i = 0; tabs && i < PQntuples(tabs) && rc == PGS_EXIT_OK; i++)
        if (rekey_table(&rk, schema, PQgetvalue(tabs, i, 0), clinic) != 0)
            rc = PGS_EXIT_FAILURE;
    PQclear(tabs);
    if (rc == PGS_EXIT_OK && rk.failed > 0)
        rc = PGS_EXIT_FAILURE;
    if (rk.pg)
        fprintf(stderr, WHO ": %ld row(s) re-encrypted, %ld value(s) did not decrypt\n",
                rk.total_done, rk.failed);
    PQfinish(rk.pg);
    pgs_keyring_free(ring);
    pgs_config_free(cfg);
    return rc;
}
