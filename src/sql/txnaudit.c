/* The write audit of a transaction: one call of audit.append_transaction_writes. */
#include "sql/txnaudit.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static const char *const TXNAUDIT_SQL =
    "SELECT audit.append_transaction_writes($1::uuid[], $2::text[], $3::bigint[], $4::text[], "
    "$5::text[], $6::int[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11)";

const char *pgs_txnaudit_statement(void)
{
    return TXNAUDIT_SQL;
}

/* One text[] element per row: @p text of row i, or SQL NULL where it is NULL. */
typedef const char *(*row_text_fn)(const pgs_txnaudit_row_t *row, pgs_sbuf_t *scratch);

static char *text_array(const pgs_txnaudit_row_t *rows, size_t n, row_text_fn text)
{
    pgs_sbuf_t sb = {0}, scratch = {0};
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(&sb, i);
        scratch.len = 0;
        const char *v = text(&rows[i], &scratch);
        if (v)
            pgs_sqlbatch_put_element(&sb, v, strlen(v));
        else
            pgs_sbuf_puts(&sb, "NULL");
    }
    free(scratch.buf);
    return pgs_sqlbatch_array_close(&sb);
}

static const char *command_id(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return r->cmd->command_id;
}

static const char *actor(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return r->cmd->actor;
}

static const char *row_key(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return pgs_sqlgen_row_key_json(r->cmd);
}

/* The names of the columns the command wrote, as the text of a text[]
 * literal: the column names are the catalog's, but quoted all the same. */
static const char *columns(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    const pgs_entity_t *ent = r->shape->ent;
    for (int i = 0; i < r->shape->ncols; i++) {
        const char *name = ent->cols[r->shape->cols[i]].name;
        pgs_sqlbatch_array_sep(s, (size_t)i);
        pgs_sqlbatch_put_element(s, name, strlen(name));
    }
    pgs_sbuf_puts(s, r->shape->ncols ? "}" : "{}");
    return s->buf;
}

static const char *trace(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return r->cmd->traceparent;
}

static const char *entity(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return r->shape->ent->name;
}

static const char *action(const pgs_txnaudit_row_t *r, pgs_sbuf_t *s)
{
    (void)s;
    return pgs_command_op_name(r->shape->op);
}

void pgs_txnaudit_params(const pgs_txnaudit_row_t *rows, size_t n, const char *topic,
                         pgs_batch_params_t *out)
{
    out->n = PGS_TXNAUDIT_NPARAMS;
    out->block = NULL;
    out->values = pgs_xalloc_calloc(PGS_TXNAUDIT_NPARAMS, sizeof(char *));
    int32_t *parts = pgs_xalloc_calloc(n ? n : 1, sizeof(int32_t));
    int64_t *offs = pgs_xalloc_calloc(n ? n : 1, sizeof(int64_t));
    int64_t *issued = pgs_xalloc_calloc(n ? n : 1, sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        parts[i] = rows[i].partition;
        offs[i] = rows[i].offset;
        issued[i] = rows[i].cmd->issued_at_ms;
    }
    out->values[0] = text_array(rows, n, command_id);
    out->values[1] = text_array(rows, n, actor);
    out->values[2] = pgs_sqlbatch_array_int64(issued, n);
    out->values[3] = text_array(rows, n, row_key);
    out->values[4] = text_array(rows, n, columns);
    out->values[5] = pgs_sqlbatch_array_int32(parts, n);
    out->values[6] = pgs_sqlbatch_array_int64(offs, n);
    out->values[7] = text_array(rows, n, trace);
    out->values[8] = text_array(rows, n, entity);
    out->values[9] = text_array(rows, n, action);
    out->values[10] = pgs_xalloc_strdup(topic);
    free(parts);
    free(offs);
    free(issued);
}
