/* Lane identity: length-prefixed (clinic, entity, canonical key) tuples. A
 * separator-joined key let a clinic id holding the separator, or two long
 * clinic ids equal in their first kilobyte, share one lane and so one
 * transaction; a length prefix cannot be forged from inside a part. */
#include "run/lanekey.h"

#include <stdint.h>
#include <string.h>

#include "catalog/keyform.h"
#include "common/tuple.h"

/* Part tags: a value in its canonical form, one PostgreSQL would reject (kept
 * as sent, so it still has a lane of its own), or a key column not given. */
#define PART_TEXT   'T'
#define PART_RAW    'R'
#define PART_ABSENT 'A'

static void part_text(pgs_sbuf_t *out, const char *s)
{
    size_t start = pgs_tuple_open(out, PART_TEXT);
    pgs_sbuf_putn(out, s ? s : "", s ? strlen(s) : 0);
    pgs_tuple_close(out, start);
}

static void part_key(pgs_sbuf_t *out, const pgs_column_t *col, const pgs_value_t *v)
{
    size_t start = pgs_tuple_open(out, PART_TEXT);
    if (pgs_keyform_append(out, col, v) == 0) {
        pgs_tuple_close(out, start);
        return;
    }
    out->len = start - PGS_TUPLE_HEADER_SIZE;
    start = pgs_tuple_open(out, PART_RAW);
    switch (v->type) {
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        pgs_sbuf_putn(out, v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len);
        break;
    case PGS_VAL_LONG:
        pgs_sbuf_printf(out, "%lld", (long long)v->u.l);
        break;
    case PGS_VAL_DOUBLE:
        pgs_sbuf_printf(out, "%.17g", v->u.d);
        break;
    case PGS_VAL_BOOL:
        pgs_sbuf_puts(out, v->u.b ? "true" : "false");
        break;
    default:
        break; /* null: matches no row; an empty raw part */
    }
    pgs_tuple_close(out, start);
}

void pgs_lanekey_command(pgs_sbuf_t *out, const pgs_command_t *cmd, const pgs_entity_t *ent)
{
    out->len = 0;
    part_text(out, cmd->clinic_id);
    part_text(out, ent->name);
    for (int i = 0; i < ent->npk; i++) {
        const pgs_column_t *col = &ent->cols[ent->pk[i]];
        const pgs_value_t *v = NULL;
        for (size_t k = 0; k < cmd->key_cnt && !v; k++) {
            if (strcmp(cmd->key[k].name, col->name) == 0)
                v = &cmd->key[k].value;
        }
        if (v) {
            part_key(out, col, v);
        } else {
            size_t start = pgs_tuple_open(out, PART_ABSENT);
            pgs_tuple_close(out, start);
        }
    }
}

void pgs_lanekey_audit(pgs_sbuf_t *out, const pgs_audit_event_t *ev)
{
    out->len = 0;
    part_text(out, ev->clinic_id);
    part_text(out, "\001audit"); /* no entity is named so: not an identifier */
    part_text(out, ev->event_id);
}
