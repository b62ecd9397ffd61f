/* One table of one clinic into a masked copy (see anon_copy.h).
 *
 * The source is read by a NO SCROLL cursor in the source's REPEATABLE READ
 * transaction, so every table of a clinic comes from one snapshot. The
 * target takes each batch by COPY into a temporary staging table (COPY FROM
 * does not run under row-level security; the INSERT from the staging table
 * does, under the target's clinic wall). Plaintexts and the COPY buffer are
 * zeroed before they are freed. */
#include "command/anon_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/copytext.h"
#include "common/fieldcrypt.h"
#include "common/sbuf.h"
#include "sql/sqlbatch.h"

#define CURSOR "pgs_anon_rows"

/* One value of a row while a batch is built: NULL, or @p len bytes. */
typedef struct {
    const char *v;
    size_t len;
    unsigned char *owned; /* a decrypted plaintext (zeroed and freed) */
} cell_t;

static void pq_error(PGconn *pg, const char *who, const char *what, const char *entity,
                     const char *clinic)
{
    const char *m = PQerrorMessage(pg);
    fprintf(stderr, "%s: %s of %s, clinic %s: %.*s\n", who, what, entity, clinic,
            (int)strcspn(m, "\n"), m);
}

static int exec_ok(PGconn *pg, const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == want;
    PQclear(res);
    return ok ? 0 : -1;
}

static void column_list(pgs_sbuf_t *sb, const pgs_ktable_t *t)
{
    for (int i = 0; i < t->ncols; i++) {
        if (i)
            pgs_sbuf_puts(sb, ", ");
        pgs_sbuf_quoted(sb, t->cols[i].name, '"');
    }
}

static void literal(pgs_sbuf_t *sb, PGconn *pg, const char *s)
{
    char *lit = PQescapeLiteral(pg, s, strlen(s));
    pgs_sbuf_puts(sb, lit ? lit : "NULL");
    PQfreemem(lit);
}

static void free_cells(cell_t *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cells[i].owned) {
            memset(cells[i].owned, 0, cells[i].len + 1);
            free(cells[i].owned);
            cells[i].owned = NULL;
        }
}

static void wipe(pgs_sbuf_t *sb)
{
    if (sb->buf)
        memset(sb->buf, 0, sb->cap);
    free(sb->buf);
    memset(sb, 0, sizeof(*sb));
}

/* The plaintext of a sealed value, in the column's text form: a bytea's raw
 * bytes become "\x" and hex digits. 0, or -1 with the reason on stderr. */
static int unseal(pgs_anon_copy_t *c, const pgs_ktable_t *t, int i, const char *clinic,
                  const char *rk, const char *text, cell_t *out)
{
    char entity[512], err[256];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    size_t len = 0, plen = 0;
    unsigned char *env = PQunescapeBytea((const unsigned char *)text, &len);
    if (!env)
        return -1;
    unsigned char *plain = malloc(len + 1);
    PgsFieldContext ctx = {clinic, entity, t->cols[i].name, rk};
    if (!plain || pgs_field_decrypt(c->ring, &ctx, env, len, plain, &plen, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s.%s of clinic %s row %s: %s\n", c->who, entity, t->cols[i].name,
                clinic, rk, plain ? err : "out of memory");
        free(plain);
        PQfreemem(env);
        return -1;
    }
    PQfreemem(env);
    if (strcmp(t->cols[i].plain_type, "bytea") == 0) {
        static const char digits[] = "0123456789abcdef";
        unsigned char *hex = malloc(2 * plen + 3);
        hex[0] = '\\';
        hex[1] = 'x';
        for (size_t k = 0; k < plen; k++) {
            hex[2 + 2 * k] = (unsigned char)digits[plain[k] >> 4];
            hex[3 + 2 * k] = (unsigned char)digits[plain[k] & 15];
        }
        hex[2 + 2 * plen] = '\0';
        memset(plain, 0, len + 1);
        free(plain);
        plain = hex;
        plen = 2 * plen + 2;
    } else {
        plain[plen] = '\0';
    }
    out->v = (const char *)plain;
    out->len = plen;
    out->owned = plain;
    return 0;
}

/* Casts the decrypted values of column @p i of the batch to the column's
 * clear type and back to text on the source, so a pseudonym or a year is
 * taken of PostgreSQL's output form, not of the spelling a producer sent.
 * 0, or -1 (the message names the column, never a value). */
static int canonicalise(pgs_anon_copy_t *c, const pgs_ktable_t *t, int i, const char *clinic,
                        cell_t *cells, int nrows, int ncols)
{
    pgs_sbuf_t arr = {0}, sql = {0};
    for (int r = 0; r < nrows; r++) {
        const cell_t *cl = &cells[(size_t)r * (size_t)ncols + (size_t)i];
        pgs_sqlbatch_array_sep(&arr, (size_t)r);
        if (cl->v)
            pgs_sqlbatch_put_element(&arr, cl->v, cl->len);
        else
            pgs_sbuf_puts(&arr, "NULL");
    }
    arr.buf = pgs_sqlbatch_array_close(&arr);
    arr.len = strlen(arr.buf);
    arr.cap = arr.len + 1;
    pgs_sbuf_printf(&sql,
                    "SELECT u.v::%s::text FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i)"
                    " ORDER BY u.i",
                    t->cols[i].plain_type);
    const char *v[1] = {arr.buf};
    PGresult *res = PQexecParams(c->src, sql.buf, 1, NULL, v, NULL, NULL, 0);
    free(sql.buf);
    wipe(&arr);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != nrows) {
        /* the server's message would quote the value: not repeated */
        fprintf(stderr, "%s: %s.%s.%s of clinic %s: a decrypted value does not read as %s\n",
                c->who, t->schema, t->table, t->cols[i].name, clinic, t->cols[i].plain_type);
        rc = -1;
    }
    for (int r = 0; rc == 0 && r < nrows; r++) {
        cell_t *cl = &cells[(size_t)r * (size_t)ncols + (size_t)i];
        if (!cl->v)
            continue;
        size_t n = (size_t)PQgetlength(res, r, 0);
        unsigned char *canon = malloc(n + 1);
        memcpy(canon, PQgetvalue(res, r, 0), n + 1);
        free_cells(cl, 1);
        cl->v = (const char *)canon;
        cl->len = n;
        cl->owned = canon;
    }
    if (res && PQntuples(res) > 0)
        for (int r = 0; r < PQntuples(res); r++)
            memset(PQgetvalue(res, r, 0), 0, (size_t)PQgetlength(res, r, 0));
    PQclear(res);
    return rc;
}

/* The COPY lines of one fetched batch, masked. 0, or -1. */
static int build_batch(pgs_anon_copy_t *c, const pgs_anon_table_t *at, const char *clinic,
                       PGresult *rows, cell_t *cells, pgs_sbuf_t *out)
{
    const pgs_ktable_t *t = &at->kt;
    int nrows = PQntuples(rows), ncols = t->ncols;
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < ncols; i++) {
            cell_t *cl = &cells[(size_t)r * (size_t)ncols + (size_t)i];
            memset(cl, 0, sizeof(*cl));
            if (PQgetisnull(rows, r, 1 + i))
                continue;
            const char *text = PQgetvalue(rows, r, 1 + i);
            if (t->cols[i].sealed) {
                if (unseal(c, t, i, clinic, PQgetvalue(rows, r, 0), text, cl) != 0)
                    return -1;
            } else {
                cl->v = text;
                cl->len = (size_t)PQgetlength(rows, r, 1 + i);
            }
        }
    for (int i = 0; i < ncols; i++)
        if (at->cols[i].canon && canonicalise(c, t, i, clinic, cells, nrows, ncols) != 0)
            return -1;
    for (int r = 0; r < nrows; r++) {
        for (int i = 0; i < ncols; i++) {
            const cell_t *cl = &cells[(size_t)r * (size_t)ncols + (size_t)i];
            const pgs_anon_col_t *ac = &at->cols[i];
            if (i)
                pgs_sbuf_putn(out, "\t", 1);
            if (!cl->v) {
                pgs_copytext_field(out, NULL, 0);
                continue;
            }
            char m[PGS_MASK_MAX_OUT];
            size_t mlen = 0;
            int k = pgs_mask_value(ac->mask, ac->form, c->pkey, ac->domain_entity,
                                   ac->domain_column, cl->v, cl->len, m, &mlen);
            if (k < 0) {
                fprintf(stderr, "%s: %s.%s.%s of clinic %s: %s\n", c->who, t->schema, t->table,
                        t->cols[i].name, clinic,
                        c->pkey ? "pseudonym failed" : "no pseudonym key for the clinic");
                return -1;
            }
            if (k == 2)
                pgs_copytext_field(out, cl->v, cl->len);
            else
                pgs_copytext_field(out, k == 1 ? m : NULL, mlen);
            memset(m, 0, sizeof(m));
        }
        pgs_sbuf_putn(out, "\n", 1);
    }
    return 0;
}

/* COPY of @p data into the staging table, then its rows into the table. */
static long load_batch(pgs_anon_copy_t *c, const char *copy_sql, const char *insert_sql,
                       const pgs_sbuf_t *data, const char *entity, const char *clinic)
{
    PGresult *res = PQexec(c->dst, copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        PQclear(res);
        pq_error(c->dst, c->who, "starting COPY into the target", entity, clinic);
        return -1;
    }
    PQclear(res);
    int ok = data->len == 0 || PQputCopyData(c->dst, data->buf, (int)data->len) == 1;
    ok = PQputCopyEnd(c->dst, ok ? NULL : "client error") == 1 && ok;
    while ((res = PQgetResult(c->dst))) {
        ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    if (!ok) {
        pq_error(c->dst, c->who, "COPY into the target", entity, clinic);
        return -1;
    }
    res = PQexec(c->dst, insert_sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        pq_error(c->dst, c->who, "inserting into the target", entity, clinic);
        return -1;
    }
    long n = atol(PQcmdTuples(res));
    PQclear(res);
    return n;
}

static void progress(const pgs_anon_copy_t *c, const pgs_ktable_t *t, const char *clinic, long done,
                     long todo, int last)
{
    if (c->bar) {
        int w = todo > 0 ? (int)(20 * (done > todo ? todo : done) / todo) : 20;
        fprintf(stderr, "\r[%-20.*s] %ld/%ld %s.%s %s   %s", w, "####################", done, todo,
                t->schema, t->table, clinic, last ? "\n" : "");
    } else if (last) {
        fprintf(stderr, "%s: %s.%s clinic %s: %ld row(s) copied\n", c->who, t->schema, t->table,
                clinic, done);
    }
}

int pgs_anon_clear(pgs_anon_copy_t *c, const pgs_anon_plan_t *plan, const char *clinic)
{
    for (int ti = plan->ntables - 1; ti >= 0; ti--) {
        const pgs_ktable_t *t = &plan->tables[ti].kt;
        pgs_sbuf_t sb = {0};
        pgs_sbuf_puts(&sb, "DELETE FROM ");
        pgs_ktable_ident(&sb, t);
        pgs_sbuf_puts(&sb, " WHERE clinic_id = ");
        literal(&sb, c->dst, clinic);
        int rc = exec_ok(c->dst, sb.buf, PGRES_COMMAND_OK);
        free(sb.buf);
        if (rc != 0) {
            pq_error(c->dst, c->who, "clearing the target's rows", t->table, clinic);
            return -1;
        }
    }
    return 0;
}

long pgs_anon_copy_table(pgs_anon_copy_t *c, const pgs_anon_plan_t *plan, int ti,
                         const char *clinic)
{
    const pgs_anon_table_t *at = &plan->tables[ti];
    const pgs_ktable_t *t = &at->kt;
    char entity[512], stage[32];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    snprintf(stage, sizeof(stage), "pg_temp.pgs_anon_stage_%d", ti);
    pgs_sbuf_t sql = {0}, cols = {0}, copy_sql = {0}, insert_sql = {0};
    column_list(&cols, t);
    /* the staging table: the target's columns, no constraints, no rows */
    pgs_sbuf_printf(&sql, "CREATE TEMP TABLE IF NOT EXISTS pgs_anon_stage_%d AS SELECT %s FROM ",
                    ti, cols.buf);
    pgs_ktable_ident(&sql, t);
    pgs_sbuf_puts(&sql, " WITH NO DATA");
    long total = -1, todo = 0;
    if (exec_ok(c->dst, sql.buf, PGRES_COMMAND_OK) != 0) {
        pq_error(c->dst, c->who, "creating the staging table", entity, clinic);
        goto out;
    }
    pgs_sbuf_printf(&copy_sql, "COPY %s (%s) FROM STDIN", stage, cols.buf);
    pgs_sbuf_printf(&insert_sql, "WITH m AS (DELETE FROM %s RETURNING *) INSERT INTO ", stage);
    pgs_ktable_ident(&insert_sql, t);
    pgs_sbuf_printf(&insert_sql, " (%s) SELECT * FROM m", cols.buf);
    /* the source's rows of the clinic, counted for the progress report */
    free(sql.buf);
    memset(&sql, 0, sizeof(sql));
    pgs_sbuf_puts(&sql, "SELECT count(*) FROM ");
    pgs_ktable_ident(&sql, t);
    pgs_sbuf_puts(&sql, " WHERE clinic_id = ");
    literal(&sql, c->src, clinic);
    PGresult *res = PQexec(c->src, sql.buf);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        pq_error(c->src, c->who, "counting the source's rows", entity, clinic);
        goto out;
    }
    todo = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    free(sql.buf);
    memset(&sql, 0, sizeof(sql));
    pgs_sbuf_puts(&sql, "DECLARE " CURSOR " NO SCROLL CURSOR FOR SELECT ");
    if (at->nseal > 0)
        pgs_ktable_row_key_sql(&sql, t, NULL);
    else
        pgs_sbuf_puts(&sql, "''");
    for (int i = 0; i < t->ncols; i++) {
        pgs_sbuf_puts(&sql, ", ");
        pgs_sbuf_quoted(&sql, t->cols[i].name, '"');
        pgs_sbuf_puts(&sql, "::text");
    }
    pgs_sbuf_puts(&sql, " FROM ");
    pgs_ktable_ident(&sql, t);
    pgs_sbuf_puts(&sql, " WHERE clinic_id = ");
    literal(&sql, c->src, clinic);
    if (exec_ok(c->src, sql.buf, PGRES_COMMAND_OK) != 0) {
        pq_error(c->src, c->who, "reading the source", entity, clinic);
        goto out;
    }
    char fetch[64];
    snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM " CURSOR, c->batch);
    cell_t *cells = calloc((size_t)c->batch * (size_t)t->ncols, sizeof(*cells));
    long done = 0;
    for (;;) {
        PGresult *rows = PQexec(c->src, fetch);
        if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
            PQclear(rows);
            pq_error(c->src, c->who, "reading the source", entity, clinic);
            done = -1;
            break;
        }
        int nrows = PQntuples(rows);
        if (nrows == 0) {
            PQclear(rows);
            break;
        }
        pgs_sbuf_t data = {0};
        int rc = build_batch(c, at, clinic, rows, cells, &data);
        free_cells(cells, (size_t)nrows * (size_t)t->ncols);
        PQclear(rows);
        long n = rc == 0 ? load_batch(c, copy_sql.buf, insert_sql.buf, &data, entity, clinic) : -1;
        wipe(&data);
        if (n < 0) {
            done = -1;
            break;
        }
        done += n;
        progress(c, t, clinic, done, todo, 0);
    }
    free(cells);
    if (exec_ok(c->src, "CLOSE " CURSOR, PGRES_COMMAND_OK) != 0 && done >= 0) {
        pq_error(c->src, c->who, "closing the cursor", entity, clinic);
        done = -1;
    }
    if (done >= 0)
        progress(c, t, clinic, done, todo, 1);
    total = done;
out:
    free(sql.buf);
    free(cols.buf);
    free(copy_sql.buf);
    free(insert_sql.buf);
    return total;
}
