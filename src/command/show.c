/* `pgscribe show`: one row (or, with --all, every row of one clinic) of a
 * target table with its field-encrypted columns decrypted, printed as JSON,
 * and a READ event in the clinic's audit trail naming who read which row
 * and columns, never a value (pgscribe.record_read, migration 0014). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command/keys_table.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/fieldcrypt.h"
#include "common/keyring.h"
#include "common/sbuf.h"

#define WHO "pgscribe show"

static void usage(FILE *out)
{
    fprintf(out, "usage: pgscribe show --clinic C --entity SCHEMA.TABLE (--key K[,K2...] | --all)\n"
                 "                     [--operator NAME] [--keyring F] [--config FILE]\n"
                 "                     [--conninfo CONNINFO] [--help]\n"
                 "Prints a row with its encrypted columns decrypted, and records that it did.\n"
                 "\n"
                 "The row is one JSON object. A READ event (who, entity, row key, columns; no\n"
                 "value) goes to the clinic's audit trail in the same transaction. The key values "
                 "are the primary-key columns\n"
                 "other than clinic_id, in primary-key order. --all prints every row of the\n"
                 "clinic, one object a line, recorded as one READ of row key \"*\".\n"
                 "The rows are read under the clinic wall (pgscribe.clinic_id is set).\n"
                 "\n"
                 "options:\n"
                 "  --operator NAME      who reads, recorded beside the database user\n"
                 "                       (default $USER)\n"
                 "  --keyring F          keyring file (default: crypto.keyring of the config)\n"
                 "  --conninfo CONNINFO  a role with pgscribe_reader; default\n"
                 "                       $PGSCRIBE_PG_ADMIN_CONNINFO, $PGSCRIBE_PG_CONNINFO, PG*\n"
                 "\n"
                 "exit codes:\n"
                 "  0  printed and recorded\n"
                 "  1  no such row, a value that does not decrypt (\"authentication failed\":\n"
                 "     tampered, or moved from another row, column or clinic), a database error;\n"
                 "     nothing is recorded\n"
                 "  2  bad arguments\n"
                 "  3  invalid configuration or keyring\n"
                 "  4  database unreachable\n");
}

typedef struct {
    const char *clinic, *entity, *keys, *operator_name;
    int all;
} show_opts_t;

static int pq_fail(PGconn *pg, const char *what, PGresult *res)
{
    const char *m = PQerrorMessage(pg);
    fprintf(stderr, WHO ": %s: %.*s\n", what, (int)strcspn(m, "\n"), m);
    PQclear(res);
    return PGS_EXIT_FAILURE;
}

/* The SELECT of the rows: row key, then every column as text. */
static char *select_sql(const pgs_ktable_t *t, const int *pk, int npk, int all)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "SELECT ");
    pgs_ktable_row_key_sql(&sb, t, NULL);
    for (int i = 0; i < t->ncols; i++) {
        pgs_sbuf_puts(&sb, ", ");
        pgs_sbuf_quoted(&sb, t->cols[i].name, '"');
        pgs_sbuf_puts(&sb, "::text");
    }
    pgs_sbuf_puts(&sb, " FROM ");
    pgs_ktable_ident(&sb, t);
    pgs_sbuf_puts(&sb, " WHERE clinic_id = $1");
    for (int k = 0; k < npk && !all; k++) {
        pgs_sbuf_puts(&sb, " AND ");
        pgs_sbuf_quoted(&sb, t->cols[pk[k]].name, '"');
        pgs_sbuf_printf(&sb, " = $%d::%s", k + 2, t->cols[pk[k]].type);
    }
    pgs_sbuf_puts(&sb, " ORDER BY 1");
    return sb.buf;
}

/* The cast of decrypted texts to their clear types and back to text, so a
 * value prints as the clear column would ("72.50" for numeric(5,2)). */
static char *cast_sql(const pgs_ktable_t *t)
{
    pgs_sbuf_t sb = {0};
    int n = 0;
    pgs_sbuf_puts(&sb, "SELECT ");
    for (int i = 0; i < t->ncols; i++) {
        const pgs_ktcol_t *c = &t->cols[i];
        if (!c->sealed)
            continue;
        pgs_sbuf_printf(&sb, "%s$%d::text::%s::text", n ? ", " : "", n + 1, c->plain_type);
        n++;
    }
    if (n == 0)
        pgs_sbuf_puts(&sb, "1");
    return sb.buf;
}

/* Decrypts the sealed columns of row @p r, prints the row's JSON line. */
static int show_row(PGconn *pg, const pgs_ktable_t *t, const PgsKeyring *ring, PGresult *rows,
                    int r, const char *clinic)
{
    const char *rk = PQgetvalue(rows, r, 0);
    char entity[512];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    const char **vals = calloc((size_t)t->ncols, sizeof(*vals));
    char **plains = calloc((size_t)t->ncols, sizeof(*plains));
    int nseal = 0, rc = PGS_EXIT_OK;
    for (int i = 0; i < t->ncols && rc == PGS_EXIT_OK; i++) {
        const pgs_ktcol_t *c = &t->cols[i];
        if (!c->sealed)
            continue;
        nseal++;
        if (PQgetisnull(rows, r, 1 + i))
            continue;
        size_t len = 0, plen = 0;
        unsigned char *env =
            PQunescapeBytea((const unsigned char *)PQgetvalue(rows, r, 1 + i), &len);
        char *plain = malloc(len + 1);
        char err[256];
        PgsFieldContext ctx = {clinic, entity, c->name, rk};
        if (!env || pgs_field_decrypt(ring, &ctx, env, len, (unsigned char *)plain, &plen, err,
                                      sizeof(err)) < 0) {
            fprintf(stderr, WHO ": %s.%s: %s\n", entity, c->name, env ? err : "not a bytea");
            free(plain);
            rc = PGS_EXIT_FAILURE;
        } else if (strcmp(c->plain_type, "bytea") == 0) {
            /* bytea's text output form */
            char *hex = malloc(2 * plen + 3);
            hex[0] = '\\';
            hex[1] = 'x';
            for (size_t b = 0; b < plen; b++)
                sprintf(hex + 2 + 2 * b, "%02x", (unsigned char)plain[b]);
            hex[2 + 2 * plen] = '\0';
            free(plain);
            plains[i] = hex;
        } else {
            plain[plen] = '\0';
            plains[i] = plain;
        }
        PQfreemem(env);
    }
    /* the clear types' own output forms */
    PGresult *cast = NULL;
    if (rc == PGS_EXIT_OK && nseal > 0) {
        int n = 0;
        for (int i = 0; i < t->ncols; i++)
            if (t->cols[i].sealed)
                vals[n++] = plains[i];
        cast = PQexecPrepared(pg, "pgs_show_cast", n, vals, NULL, NULL, 0);
        if (PQresultStatus(cast) != PGRES_TUPLES_OK)
            rc = pq_fail(pg, "casting to the clear types", cast), cast = NULL;
    }
    if (rc == PGS_EXIT_OK) {
        json_t *o = json_object();
        int n = 0;
        for (int i = 0; i < t->ncols; i++) {
            const pgs_ktcol_t *c = &t->cols[i];
            const char *v = NULL;
            size_t vlen = 0;
            if (c->sealed) {
                if (!PQgetisnull(cast, 0, n)) {
                    v = PQgetvalue(cast, 0, n);
                    vlen = (size_t)PQgetlength(cast, 0, n);
                }
                n++;
            } else if (!PQgetisnull(rows, r, 1 + i)) {
                v = PQgetvalue(rows, r, 1 + i);
                vlen = (size_t)PQgetlength(rows, r, 1 + i);
            }
            json_object_set_new(o, c->name, v ? json_stringn(v, vlen) : json_null());
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    }
    PQclear(cast);
    for (int i = 0; i < t->ncols; i++)
        free(plains[i]);
    free(plains);
    free(vals);
    return rc;
}

/* The READ event: entity, row key, the decrypted columns' names. */
static int record_read(PGconn *pg, const pgs_ktable_t *t, const char *clinic, const char *row_key,
                       const char *operator_name)
{
    pgs_sbuf_t cols = {0};
    pgs_sbuf_puts(&cols, "{");
    int n = 0;
    for (int i = 0; i < t->ncols; i++)
        if (t->cols[i].sealed) {
            if (n++)
                pgs_sbuf_puts(&cols, ",");
            pgs_sbuf_quoted(&cols, t->cols[i].name, '"');
        }
    pgs_sbuf_puts(&cols, "}");
    char entity[512];
    snprintf(entity, sizeof(entity), "%s.%s", t->schema, t->table);
    const char *params[5] = {clinic, entity, row_key, cols.buf, operator_name};
    PGresult *res = PQexecParams(pg, "SELECT pgscribe.record_read($1, $2, $3, $4::text[], $5)", 5,
                                 NULL, params, NULL, NULL, 0);
    free(cols.buf);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pq_fail(pg, "recording the read", res);
    PQclear(res);
    return PGS_EXIT_OK;
}

static int show_run(PGconn *pg, const show_opts_t *o, const pgs_ktable_t *t, const PgsKeyring *ring)
{
    int pk[64], npk = 0;
    for (int pos = 1; pos <= t->ncols; pos++)
        for (int i = 0; i < t->ncols && npk < 64; i++)
            if (t->cols[i].pk_pos == pos && strcmp(t->cols[i].name, "clinic_id") != 0)
                pk[npk++] = i;
    const char *params[65] = {o->clinic};
    char *keys = o->keys ? strdup(o->keys) : NULL;
    int nk = 0;
    for (char *save = NULL, *k = keys ? strtok_r(keys, ",", &save) : NULL; k && nk < 64;
         k = strtok_r(NULL, ",", &save))
        params[1 + nk++] = k;
    int rc = PGS_EXIT_OK;
    if (!o->all && nk != npk) {
        fprintf(stderr, WHO ": %s has %d key column(s), --key gave %d value(s)\n", o->entity, npk,
                nk);
        free(keys);
        return PGS_EXIT_USAGE;
    }
    char *sql = select_sql(t, pk, npk, o->all), *csql = cast_sql(t);
    PGresult *res = PQprepare(pg, "pgs_show_cast", csql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pq_fail(pg, "preparing the cast", res);
    else
        PQclear(res);
    PGresult *rows = NULL;
    if (rc == PGS_EXIT_OK) {
        rows = PQexecParams(pg, sql, o->all ? 1 : 1 + npk, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(rows) != PGRES_TUPLES_OK)
            rc = pq_fail(pg, "reading", rows), rows = NULL;
        else if (PQntuples(rows) == 0 && !o->all) {
            fprintf(stderr, WHO ": no such row of clinic %s in %s\n", o->clinic, o->entity);
            rc = PGS_EXIT_FAILURE;
        }
    }
    for (int r = 0; rows && r < PQntuples(rows) && rc == PGS_EXIT_OK; r++)
        rc = show_row(pg, t, ring, rows, r, o->clinic);
    if (rc == PGS_EXIT_OK)
        rc = record_read(pg, t, o->clinic, o->all ? "*" : PQgetvalue(rows, 0, 0), o->operator_name);
    PQclear(rows);
    free(sql);
    free(csql);
    free(keys);
    return rc;
}

int pgs_cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clinic", required_argument, NULL, 'l'},   {"entity", required_argument, NULL, 'e'},
        {"key", required_argument, NULL, 'K'},      {"all", no_argument, NULL, 'a'},
        {"operator", required_argument, NULL, 'o'}, {"keyring", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'C'},   {"conninfo", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    show_opts_t o = {.operator_name = getenv("USER")};
    const char *keyring = NULL, *config = NULL, *conninfo = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o.clinic = optarg;
            break;
        case 'e':
            o.entity = optarg;
            break;
        case 'K':
            o.keys = optarg;
            break;
        case 'a':
            o.all = 1;
            break;
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
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    const char *dot = o.entity ? strchr(o.entity, '.') : NULL;
    if (optind < argc || !o.clinic || !dot || (!o.keys == !o.all)) {
        fprintf(stderr, WHO ": --clinic, --entity SCHEMA.TABLE and one of --key, --all are "
                            "required\n");
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = NULL;
    if (!keyring && pgs_cli_config_path(config)) {
        if (!(cfg = pgs_cli_load_config(config)))
            return PGS_EXIT_CONFIG;
        keyring = pgs_config_str(cfg, "crypto.keyring");
    }
    char err[512];
    PgsKeyring *ring = pgs_ktable_keyring(keyring, err, sizeof(err));
    pgs_config_free(cfg);
    if (!ring) {
        fprintf(stderr, WHO ": %s\n", err);
        return PGS_EXIT_CONFIG;
    }
    PGconn *pg = pgs_ktable_connect(pgs_cli_admin_conninfo(conninfo), WHO);
    if (!pg) {
        pgs_keyring_free(ring);
        return PGS_EXIT_DATABASE;
    }
    char *schema = strndup(o.entity, (size_t)(dot - o.entity));
    pgs_ktable_t t;
    int rc = PGS_EXIT_OK;
    const char *params[1] = {o.clinic};
    PGresult *res = PQexec(pg, "BEGIN");
    PQclear(res);
    res = PQexecParams(pg, "SELECT pg_catalog.set_config('pgscribe.clinic_id', $1, true)", 1, NULL,
                       params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pq_fail(pg, "setting the clinic", res);
    else
        PQclear(res);
    if (rc == PGS_EXIT_OK && pgs_ktable_load(pg, schema, dot + 1, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        rc = PGS_EXIT_FAILURE;
    } else if (rc == PGS_EXIT_OK) {
        rc = show_run(pg, &o, &t, ring);
        pgs_ktable_free(&t);
    }
    if (rc == PGS_EXIT_OK)
        rc = pgs_ktable_exec(pg, "COMMIT", WHO) == 0 ? PGS_EXIT_OK : PGS_EXIT_FAILURE;
    else
        PQclear(PQexec(pg, "ROLLBACK"));
    free(schema);
    PQfinish(pg);
    pgs_keyring_free(ring);
    return rc;
}
