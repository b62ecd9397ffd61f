/* The statement around every command write: idempotency record, audit row, write, row check. */
#include "sql/sqlenvelope.h"

#include "common/sbuf.h"

/* What differs between one command and many: where the rows come from,
 * which CTE holds the fresh (not yet applied) commands, and the check. */
typedef struct {
    const char *applied_rows;
    const char *fresh;
    const char *audit_source; /* command_id, clinic_id, actor */
    const char *audit_row_key;
    const char *check;
} pgs_sqlenvelope_rows_t;

static const pgs_sqlenvelope_rows_t ONE = {
    "VALUES ($1::uuid, $2, $4, $5::int, $6::bigint)", "ins", "command_id, $2, $3", "$7::jsonb",
    "pgscribe.expect_rows((SELECT count(*) FROM ins), (SELECT count(*) FROM w)) AS fresh"};

static const pgs_sqlenvelope_rows_t MANY = {
    "SELECT command_id, $1, $2, kpart, koff FROM input", "fresh", "command_id, $1, actor",
    "row_key", "pgscribe.expect_all((SELECT count(*) FROM fresh), (SELECT count(*) FROM w))"};

char *pgs_sqlenvelope_statement(const char *entity, pgs_op_t op, const char *input,
                                const char *write)
{
    const pgs_sqlenvelope_rows_t *rows = input ? &MANY : &ONE;
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, "WITH ");
    if (input) {
        pgs_sbuf_puts(&sb, "input AS (");
        pgs_sbuf_puts(&sb, input);
        pgs_sbuf_puts(&sb, "),\n");
    }
    pgs_sbuf_printf(&sb,
                    "ins AS (\n"
                    "  INSERT INTO pgscribe.applied_commands"
                    " (command_id, clinic_id, topic, kafka_partition, kafka_offset)\n"
                    "  %s\n"
                    "  ON CONFLICT (command_id) DO NOTHING RETURNING command_id),\n",
                    rows->applied_rows);
    /* a command id repeated inside one batch counts once: the first wins */
    if (input)
        pgs_sbuf_puts(&sb, "fresh AS (SELECT DISTINCT ON (i.command_id) i.* FROM input i JOIN ins "
                           "USING (command_id) ORDER BY i.command_id, i.ord),\n");
    pgs_sbuf_printf(&sb,
                    "aud AS (\n"
                    "  INSERT INTO pgscribe.write_audit"
                    " (command_id, clinic_id, actor, entity, op, row_key)\n"
                    "  SELECT %s, ",
                    rows->audit_source);
    pgs_sbuf_quoted(&sb, entity, '\'');
    pgs_sbuf_printf(&sb, ", '%s', %s FROM %s),\nw AS (\n  ", pgs_command_op_name(op),
                    rows->audit_row_key, rows->fresh);
    pgs_sbuf_puts(&sb, write);
    pgs_sbuf_printf(&sb, "\n  RETURNING 1)\nSELECT %s", rows->check);
    return sb.buf;
}
