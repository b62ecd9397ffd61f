/* `pgscribe keys`: the keyring's life (rotate, shred), what each key still
 * protects (status), and the one-time conversion of a schema's PHI columns
 * to field encryption (protect). See docs/keys.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "command/keys_protect.h"
#include "command/keys_table.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/fieldcrypt.h"
#include "common/keyring.h"
#include "common/sbuf.h"

#define WHO "pgscribe keys"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgscribe keys rotate [--clinic C] [--purpose field|pseudonym] [--keyring F]\n"
            "       pgscribe keys status [--clinic C] [--schema S] [--conninfo CONNINFO]\n"
            "       pgscribe keys shred --clinic C --yes [--keyring F]\n"
            "       pgscribe keys protect [--schema S] [--keyring F] [--conninfo CONNINFO]\n"
            "Manages the keyring of field encryption (docs/keys.md).\n"
            "\n"
            "  rotate   adds a new key, current for its purpose and scope (the clinic's own,\n"
            "           or \"*\"), keeps the old ones for reading; prints the new key id.\n"
            "           A keyring file that does not exist yet is created (0600).\n"
            "           Running workers take it on SIGHUP; `pgscribe rekey` moves old rows.\n"
            "  status   per table and column: the values each key id protects, the values\n"
            "           still in clear.\n"
            "  shred    removes every key of one clinic (crypto-shredding its encrypted\n"
            "           values); needs --yes.\n"
            "  protect  converts the PHI columns (pgscribe.column_policy.is_phi) of the\n"
            "           schema still in clear to bytea envelopes, encrypting existing rows,\n"
            "           in one transaction per table. Stop the workers first; needs a\n"
            "           superuser (or the tables' owner with BYPASSRLS). Idempotent.\n"
            "\n"
            "options:\n"
            "  --keyring F          keyring file (default: crypto.keyring of the config)\n"
            "  --config FILE        configuration file (crypto.keyring, pg.schema)\n"
            "  --conninfo CONNINFO  default $PGSCRIBE_PG_ADMIN_CONNINFO, then\n"
            "                       $PGSCRIBE_PG_CONNINFO, then libpq's PG* variables\n"
            "  --schema S           target schema (default pg.schema)\n"
            "  --clinic C           one clinic (rotate: its own key; status: its rows)\n"
            "  --purpose P          field (default) or pseudonym\n"
            "  --yes                confirm shred\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  done\n"
            "  1  failed (keyring not written / transaction rolled back)\n"
            "  2  bad arguments, or shred without --yes\n"
            "  3  invalid configuration or keyring\n"
            "  4  database unreachable\n");
}

typedef struct {
    const char *keyring, *config, *conninfo, *schema, *clinic;
    pgs_key_purpose_t purpose;
    int yes;
    pgs_config_t *cfg;
} keys_opts_t;

static const char *opt_keyring(keys_opts_t *o)
{
    if (o->keyring)
        return o->keyring;
    return o->cfg ? pgs_config_str(o->cfg, "crypto.keyring") : NULL;
}

static const char *opt_schema(keys_opts_t *o)
{
    if (o->schema)
        return o->schema;
    return o->cfg ? pgs_config_str(o->cfg, "pg.schema") : "clinic";
}

/* ---- rotate, shred ---- */

static int keys_rotate(keys_opts_t *o)
{
    const char *path = opt_keyring(o);
    char err[512];
    if (!path || !*path) {
        fprintf(stderr, WHO ": no keyring: give --keyring or set crypto.keyring\n");
        return PGS_EXIT_USAGE;
    }
    PgsKeyring *ring = NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        ring = calloc(1, sizeof(*ring)); /* a new keyring */
    } else if (pgs_keyring_load(path, &ring, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": keyring %s: %s\n", path, err);
        return PGS_EXIT_CONFIG;
    }
    uint32_t id = pgs_keyring_rotate(ring, o->purpose, o->clinic, err, sizeof(err));
    if (id == 0 || pgs_keyring_save(ring, path, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        pgs_keyring_free(ring);
        return PGS_EXIT_FAILURE;
    }
    pgs_keyring_free(ring);
    printf("%u\n", id);
    fprintf(stderr,
            WHO ": key %u is the current %s key of %s%s; send SIGHUP to the workers, then run "
                "`pgscribe rekey`\n",
            id, pgs_key_purpose_name(o->purpose), o->clinic ? "clinic " : "scope ",
            o->clinic ? o->clinic : "*");
    return PGS_EXIT_OK;
}

static int keys_shred(keys_opts_t *o)
{
    if (!o->clinic) {
        fprintf(stderr, WHO " shred: --clinic is required\n");
        return PGS_EXIT_USAGE;
    }
    if (!o->yes) {
        fprintf(stderr,
                WHO " shred: removing clinic %s's keys makes its encrypted values "
                    "unreadable for ever; add --yes\n",
                o->clinic);
        return PGS_EXIT_USAGE;
    }
    const char *path = opt_keyring(o);
    char err[512];
    PgsKeyring *ring = pgs_ktable_keyring(path, err, sizeof(err));
    if (!ring) {
        fprintf(stderr, WHO ": %s\n", err);
        return PGS_EXIT_CONFIG;
    }
    size_t kept = 0, gone = 0;
    for (size_t i = 0; i < ring->n; i++) {
        PgsKey *k = &ring->keys[i];
        if (k->clinic && strcmp(k->clinic, o->clinic) == 0) {
            printf("shredded key %u (%s)\n", k->id, pgs_key_purpose_name(k->purpose));
            free(k->clinic);
            memset(k->bytes, 0, sizeof k->bytes);
            gone++;
            continue;
        }
        ring->keys[kept++] = *k;
    }
    ring->n = kept;
    int rc = PGS_EXIT_OK;
    if (gone == 0)
        fprintf(stderr, WHO " shred: clinic %s has no keys of its own\n", o->clinic);
    else if (pgs_keyring_save(ring, path, err, sizeof(err)) != 0) {
        fprintf(stderr, WHO ": %s\n", err);
        rc = PGS_EXIT_FAILURE;
    } else
        fprintf(stderr,
                WHO " shred: %zu key(s) removed; send SIGHUP to the workers, and remove the "
                    "keyring's backups too\n",
                gone);
    pgs_keyring_free(ring);
    return rc;
}

/* ---- status ---- */

static int status_column(PGconn *pg, const pgs_ktable_t *t, const pgs_ktcol_t *c,
                         const char *clinic)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, c->sealed ? "SELECT pgscribe.envelope_key_id(" : "SELECT NULL::bigint, ");
    if (c->sealed) {
        pgs_sbuf_quoted(&sb, c->name, '"');
        pgs_sbuf_puts(&sb, ")");
    }
    pgs_sbuf_puts(&sb, ", count(*) FROM ");
    pgs_ktable_ident(&sb, t);
    pgs_sbuf_puts(&sb, " WHERE ");
    pgs_sbuf_quoted(&sb, c->name, '"');
    pgs_sbuf_puts(&sb,
                  " IS NOT NULL AND ($1::text IS NULL OR clinic_id = $1) GROUP BY 1 ORDER BY 1");
    const char *params[1] = {clinic};
    PGresult *res = PQexecParams(pg, sb.buf, 1, NULL, params, NULL, NULL, 0);
    free(sb.buf);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *m = PQerrorMessage(pg);
        fprintf(stderr, WHO " status: %s.%s: %.*s\n", t->table, c->name, (int)strcspn(m, "\n"), m);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 0)
        printf("%s.%s.%s\t%s\t0\n", t->schema, t->table, c->name,
               c->sealed ? "encrypted" : "clear");
    for (int r = 0; r < PQntuples(res); r++) {
        if (!c->sealed)
            printf("%s.%s.%s\tclear\t%s\n", t->schema, t->table, c->name, PQgetvalue(res, r, 1));
        else if (PQgetisnull(res, r, 0))
            printf("%s.%s.%s\tnot-an-envelope\t%s\n", t->schema, t->table, c->name,
                   PQgetvalue(res, r, 1));
        else
            printf("%s.%s.%s\tkey=%s\t%s\n", t->schema, t->table, c->name, PQgetvalue(res, r, 0),
                   PQgetvalue(res, r, 1));
    }
    PQclear(res);
    return 0;
}

static int keys_status(keys_opts_t *o)
{
    PGconn *pg = pgs_ktable_connect(pgs_cli_admin_conninfo(o->conninfo), WHO " status");
    if (!pg)
        return PGS_EXIT_DATABASE;
    char err[512];
    PGresult *tabs = pgs_ktable_phi_tables(pg, opt_schema(o), err, sizeof(err));
    int rc = tabs ? PGS_EXIT_OK : PGS_EXIT_FAILURE;
    if (!tabs)
        fprintf(stderr, WHO " status: %s\n", err);
    printf("# column\tstate\tvalues\n");
    for (int i = 0; tabs && i < PQntuples(tabs) && rc == PGS_EXIT_OK; i++) {
        pgs_ktable_t t;
        if (pgs_ktable_load(pg, opt_schema(o), PQgetvalue(tabs, i, 0), &t, err, sizeof(err))) {
            fprintf(stderr, WHO " status: %s\n", err);
            rc = PGS_EXIT_FAILURE;
            break;
        }
        for (int c = 0; c < t.ncols && rc == PGS_EXIT_OK; c++)
            if (t.cols[c].is_phi && status_column(pg, &t, &t.cols[c], o->clinic) != 0)
                rc = PGS_EXIT_FAILURE;
        pgs_ktable_free(&t);
    }
    PQclear(tabs);
    PQfinish(pg);
    return rc;
}

/* ---- protect ---- */

static int keys_protect(keys_opts_t *o)
{
    char err[512];
    PgsKeyring *ring = pgs_ktable_keyring(opt_keyring(o), err, sizeof(err));
    if (!ring) {
        fprintf(stderr, WHO " protect: %s\n", err);
        return PGS_EXIT_CONFIG;
    }
    PGconn *pg = pgs_ktable_connect(pgs_cli_admin_conninfo(o->conninfo), WHO " protect");
    if (!pg) {
        pgs_keyring_free(ring);
        return PGS_EXIT_DATABASE;
    }
    int rc = pgs_keys_protect(pg, opt_schema(o), ring);
    PQfinish(pg);
    pgs_keyring_free(ring);
    return rc;
}

int pgs_cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"keyring", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'C'},
        {"conninfo", required_argument, NULL, 'c'},
        {"schema", required_argument, NULL, 's'},
        {"clinic", required_argument, NULL, 'l'},
        {"purpose", required_argument, NULL, 'p'},
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? PGS_EXIT_USAGE : PGS_EXIT_OK;
    }
    const char *sub = argv[1];
    keys_opts_t o = {.purpose = PGS_KEY_FIELD};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o.keyring = optarg;
            break;
        case 'C':
            o.config = optarg;
            break;
        case 'c':
            o.conninfo = optarg;
            break;
        case 's':
            o.schema = optarg;
            break;
        case 'l':
            o.clinic = optarg;
            break;
        case 'y':
            o.yes = 1;
            break;
        case 'p':
            if (strcmp(optarg, "field") == 0)
                o.purpose = PGS_KEY_FIELD;
            else if (strcmp(optarg, "pseudonym") == 0)
                o.purpose = PGS_KEY_PSEUDONYM;
            else {
                fprintf(stderr, WHO ": --purpose must be field or pseudonym\n");
                return PGS_EXIT_USAGE;
            }
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
    if (pgs_cli_config_path(o.config) && !(o.cfg = pgs_cli_load_config(o.config)))
        return PGS_EXIT_CONFIG;
    int rc;
    if (strcmp(sub, "rotate") == 0)
        rc = keys_rotate(&o);
    else if (strcmp(sub, "status") == 0)
        rc = keys_status(&o);
    else if (strcmp(sub, "shred") == 0)
        rc = keys_shred(&o);
    else if (strcmp(sub, "protect") == 0)
        rc = keys_protect(&o);
    else {
        fprintf(stderr, WHO ": unknown subcommand '%s'\n", sub);
        usage(stderr);
        rc = PGS_EXIT_USAGE;
    }
    pgs_config_free(o.cfg);
    return rc;
}
