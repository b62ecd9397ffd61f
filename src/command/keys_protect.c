/* `pgscribe keys protect`: a schema's PHI columns still in clear become
 * field-encrypted, one transaction per table (see docs/keys.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/keys_protect.h"
#include "command/keys_table.h"
#include "common/cli.h"
#include "common/fieldcrypt.h"
#include "common/keyring.h"
#include "common/sbuf.h"

#define WHO "pgscribe keys protect"

static int is_bytea(const pgs_ktcol_t *c)
{
    return strcmp(c->type, "bytea") == 0;
}

/* The pk columns other than clinic_id in pk order, as indexes into t. */
static int pk_order(const pgs_ktable_t *t, int *out)
{
    int n = 0;
    for (int pos = 1; pos <= t->ncols; pos++)
        for (int i = 0; i < t->ncols; i++)
            if (t->cols[i].pk_pos == pos && strcmp(t->cols[i].name, "clinic_id") != 0)
                out[n++] = i;
    return n;
}

static int fail(PGconn *pg, const char *what, PGresult *res)
{
    const char *m = PQerrorMessage(pg);
    fprintf(stderr, WHO ": %s: %.*s\n", what, (int)strcspn(m, "\n"), m);
    PQclear(res);
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}

/* Encrypts and writes back every row of the table; the columns are bytea. */
static int seal_rows(PGconn *pg, const pgs_ktable_t *t, const int *seal, int nseal, const int *pk,
                     int npk, PGresult *rows, const PgsKeyring *ring, long *done)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "UPDATE ");
    pgs_ktable_ident(&sb, t);
    pgs_sbuf_puts(&sb, " SET ");
    for (int j = 0; j < nseal; j++) {
        if (j)
            pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t->cols[seal[j]].name, '"');
        pgs_sbuf_printf(&sb, " = $%d::bytea", j + 1);
    }
    pgs_sbuf_printf(&sb, " WHERE clinic_id = $%d", nseal + 1);
    for (int k = 0; k < npk; k++) {
        pgs_sbuf_puts(&sb, " AND ");
        pgs_sbuf_quoted(&sb, t->cols[pk[k]].name, '"');
        pgs_sbuf_printf(&sb, " = $%d::%s", nseal + 2 + k, t->cols[pk[k]].type);
    }
    PGresult *res = PQprepare(pg, "pgs_protect", sb.buf, 0, NULL);
    free(sb.buf);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(pg, "preparing the update", res);
    PQclear(res);
    char entity[512];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    int np = nseal + 1 + npk;
    const char **vals = calloc((size_t)np, sizeof(*vals));
    int *lens = calloc((size_t)np, sizeof(int)), *fmts = calloc((size_t)np, sizeof(int));
    unsigned char **bufs = calloc((size_t)nseal, sizeof(*bufs));
    int rc = 0;
    for (int r = 0; r < PQntuples(rows) && rc == 0; r++) {
        const char *rk = PQgetvalue(rows, r, 0), *clinic = PQgetvalue(rows, r, 1);
        const PgsKey *key = pgs_keyring_current(ring, PGS_KEY_FIELD, clinic);
        if (!key) {
            fprintf(stderr, WHO ": %s: no current field key for clinic %s\n", entity, clinic);
            rc = -1;
            break;
        }
        for (int j = 0; j < nseal; j++) {
            const pgs_ktcol_t *c = &t->cols[seal[j]];
            int f = 2 + npk + j;
            free(bufs[j]);
            bufs[j] = NULL;
            vals[j] = NULL;
            lens[j] = 0;
            fmts[j] = 1;
            if (PQgetisnull(rows, r, f))
                continue;
            size_t len = 0;
            unsigned char *plain = NULL;
            if (is_bytea(c))
                plain = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, r, f), &len);
            const void *p = plain ? (const void *)plain : PQgetvalue(rows, r, f);
            if (!plain)
                len = (size_t)PQgetlength(rows, r, f);
            bufs[j] = malloc(len + PGS_ENVELOPE_OVERHEAD);
            PgsFieldContext ctx = {clinic, entity, c->name, rk};
            size_t n = pgs_field_encrypt(key, &ctx, p, len, bufs[j]);
            PQfreemem(plain);
            if (n == 0) {
                fprintf(stderr, WHO ": %s.%s: encryption failed\n", entity, c->name);
                rc = -1;
                break;
            }
            vals[j] = (const char *)bufs[j];
            lens[j] = (int)n;
        }
        if (rc)
            break;
        vals[nseal] = clinic;
        fmts[nseal] = 0;
        for (int k = 0; k < npk; k++) {
            vals[nseal + 1 + k] = PQgetvalue(rows, r, 2 + k);
            fmts[nseal + 1 + k] = 0;
        }
        res = PQexecPrepared(pg, "pgs_protect", np, vals, lens, fmts, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fail(pg, "updating a row", res);
            rc = -2; /* rolled back already */
            break;
        }
        PQclear(res);
        (*done)++;
    }
    for (int j = 0; j < nseal; j++)
        free(bufs[j]);
    free(bufs);
    free(vals);
    free(lens);
    free(fmts);
    PQclear(PQexec(pg, "DEALLOCATE pgs_protect"));
    return rc;
}

static int protect_table(PGconn *pg, const char *schema, const char *table, const PgsKeyring *ring)
{
    char err[512];
    pgs_ktable_t t;
    if (pgs_ktable_load(pg, schema, table, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        return -1;
    }
    int *seal = calloc((size_t)t.ncols, sizeof(int)), *pk = calloc((size_t)t.ncols, sizeof(int));
    int nseal = 0, npk = pk_order(&t, pk), rc = 0;
    for (int i = 0; i < t.ncols; i++)
        if (t.cols[i].is_phi && !t.cols[i].sealed && !t.cols[i].pk_pos &&
            strcmp(t.cols[i].name, "clinic_id") != 0)
            seal[nseal++] = i;
    if (nseal == 0) {
        printf("%s.%s: nothing to protect\n", schema, table);
        goto out;
    }
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "BEGIN; LOCK TABLE ");
    pgs_ktable_ident(&sb, &t);
    pgs_sbuf_puts(&sb, " IN ACCESS EXCLUSIVE MODE");
    rc = pgs_ktable_exec(pg, sb.buf, WHO);
    sb.len = 0;
    if (rc)
        goto out_sb;
    pgs_sbuf_puts(&sb, "SELECT ");
    pgs_ktable_row_key_sql(&sb, &t, NULL);
    pgs_sbuf_puts(&sb, ", clinic_id");
    for (int k = 0; k < npk; k++) {
        pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t.cols[pk[k]].name, '"');
        pgs_sbuf_puts(&sb, "::text");
    }
    for (int j = 0; j < nseal; j++) {
        pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t.cols[seal[j]].name, '"');
        pgs_sbuf_puts(&sb, "::text");
    }
    pgs_sbuf_puts(&sb, " FROM ");
    pgs_ktable_ident(&sb, &t);
    PGresult *rows = PQexec(pg, sb.buf);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        rc = fail(pg, "reading the rows", rows);
        goto out_sb;
    }
    /* the columns become bytea; the values are sealed right after, in the
     * same transaction, so no reader sees the intermediate bytes */
    for (int j = 0; j < nseal && rc == 0; j++) {
        const pgs_ktcol_t *c = &t.cols[seal[j]];
        if (is_bytea(c))
            continue;
        sb.len = 0;
        pgs_sbuf_puts(&sb, "ALTER TABLE ");
        pgs_ktable_ident(&sb, &t);
        pgs_sbuf_puts(&sb, " ALTER COLUMN ");
        pgs_sbuf_quoted(&sb, c->name, '"');
        pgs_sbuf_puts(&sb, " DROP DEFAULT, ALTER COLUMN ");
        pgs_sbuf_quoted(&sb, c->name, '"');
        pgs_sbuf_puts(&sb, " TYPE bytea USING convert_to(");
        pgs_sbuf_quoted(&sb, c->name, '"');
        pgs_sbuf_puts(&sb, "::text, 'UTF8')");
        if (pgs_ktable_exec(pg, sb.buf, WHO) != 0) {
            PQclear(PQexec(pg, "ROLLBACK"));
            rc = -1;
        }
    }
    long done = 0;
    if (rc == 0 && (rc = seal_rows(pg, &t, seal, nseal, pk, npk, rows, ring, &done)) == -1)
        PQclear(PQexec(pg, "ROLLBACK"));
    PQclear(rows);
    for (int j = 0; j < nseal && rc == 0; j++) {
        const char *params[4] = {schema, table, t.cols[seal[j]].name, t.cols[seal[j]].type};
        PGresult *res = PQexecParams(pg,
                                     "UPDATE pgscribe.column_policy SET encrypted = true,"
                                     " plain_type = $4 WHERE schema_name = $1"
                                     " AND table_name = $2 AND column_name = $3",
                                     4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = fail(pg, "recording the policy", res);
        else
            PQclear(res);
    }
    if (rc == 0 && pgs_ktable_exec(pg, "COMMIT", WHO) != 0)
        rc = -1;
    if (rc == 0)
        printf("%s.%s: %d column(s) protected, %ld row(s) encrypted\n", schema, table, nseal, done);
out_sb:
    free(sb.buf);
out:
    free(seal);
    free(pk);
    pgs_ktable_free(&t);
    return rc ? -1 : 0;
}

int pgs_keys_protect(PGconn *pg, const char *schema, const PgsKeyring *ring)
{
    char err[512];
    PGresult *tabs = pgs_ktable_phi_tables(pg, schema, err, sizeof(err));
    if (!tabs) {
        fprintf(stderr, WHO ": %s\n", err);
        return PGS_EXIT_FAILURE;
    }
    int rc = PGS_EXIT_OK;
    for (int i = 0; i < PQntuples(tabs) && rc == PGS_EXIT_OK; i++)
        if (protect_table(pg, schema, PQgetvalue(tabs, i, 0), ring) != 0)
            rc = PGS_EXIT_FAILURE;
    PQclear(tabs);
    if (rc == PGS_EXIT_OK)
        fprintf(stderr, WHO ": done; old clear values may survive in free space and WAL until "
                            "VACUUM FULL and the WAL's recycling (docs/keys.md)\n");
    return rc;
}
