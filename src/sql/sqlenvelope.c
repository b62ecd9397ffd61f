/* The statement around every command write: idempotency record, write, row
 * check. The write audit of the transaction's fresh commands follows in one
 * statement of its own (txnaudit.c). */
#include "sql/sqlenvelope.h"

#include "common/sbuf.h"

/* What differs between one command and many: where the rows come from,
 * which CTE holds the fresh (not yet applied) commands, and the check. */
typedef struct {
    const char *applied_rows; /* %d: the digest parameter */
    const char *seen;         /* the commands whose id was recorded before */
    const char *check;
} pgs_sqlenvelope_rows_t;

static const pgs_sqlenvelope_rows_t ONE = {
    "VALUES ($1::uuid, $2, $3, $4::int, $5::bigint, $%d::bytea)",
    "SELECT pgscribe.expect_same_command($1::uuid, $%d::bytea, NULL) AS n"
    " WHERE NOT EXISTS (SELECT 1 FROM ins)",
    "pgscribe.expect_rows((SELECT count(*) FROM ins), (SELECT count(*) FROM w)) AS fresh"};

/* An input row that is not its id's fresh one: either its id was recorded
 * before (f is NULL: the stored digest decides) or an earlier row of this
 * statement has the id (the first row's digest decides). */
static const pgs_sqlenvelope_rows_t MANY = {
    "SELECT command_id, $1, $2, kpart, koff, digest FROM input",
    "SELECT pgscribe.expect_same_command(i.command_id, i.digest, f.digest) AS n"
    " FROM input i LEFT JOIN fresh f USING (command_id) WHERE f.ord IS DISTINCT FROM i.ord",
    "pgscribe.expect_all((SELECT count(*) FROM fresh), (SELECT count(*) FROM w))"};

char *pgs_sqlenvelope_statement(const char *input, int digest_param, const char *write)
{
    const pgs_sqlenvelope_rows_t *rows = input ? &MANY : &ONE;
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "WITH ");
    if (input) {
        pgs_sbuf_puts(&sb, "input AS (");
        pgs_sbuf_puts(&sb, input);
        pgs_sbuf_puts(&sb, "),\n");
    }
    pgs_sbuf_printf(&sb, "ins AS (\n"
                         "  INSERT INTO pgscribe.applied_commands"
                         " (command_id, clinic_id, topic, kafka_partition, kafka_offset, digest)\n"
                         "  ");
    pgs_sbuf_printf(&sb, rows->applied_rows, digest_param);
    pgs_sbuf_puts(&sb, "\n  ON CONFLICT (command_id) DO NOTHING RETURNING command_id),\n");
    /* a command id repeated inside one batch counts once: the first wins */
    if (input)
        pgs_sbuf_puts(&sb, "fresh AS (SELECT DISTINCT ON (i.command_id) i.* FROM input i JOIN ins "
                           "USING (command_id) ORDER BY i.command_id, i.ord),\n");
    /* an id already recorded is a duplicate only if its content is the same:
     * expect_same_command raises PS002 (reused id) otherwise */
    pgs_sbuf_puts(&sb, "seen AS (");
    pgs_sbuf_printf(&sb, rows->seen, digest_param);
    pgs_sbuf_puts(&sb, "),\nw AS (\n  ");
    pgs_sbuf_puts(&sb, write);
    /* FROM the count of seen: a CTE nobody reads is never run */
    pgs_sbuf_printf(&sb, "\n  RETURNING 1)\nSELECT %s FROM (SELECT count(*) FROM seen) s",
                    rows->check);
    return sb.buf;
}
