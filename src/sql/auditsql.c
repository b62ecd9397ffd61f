/* Audit events into the audit trail (audit.events): one chained append per batch. */
#include "sql/auditsql.h"
#include "common/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* audit.append_events (migration 0010) records each event id once and
 * chains the new events of the clinic in (partition, offset) order. */
static const char *const AUDIT_SQL =
    "SELECT audit.append_events($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], "
    "$6::text[], $7::text[], $8::bigint[], $9::text[], $10::jsonb[], $11::int[], $12::bigint[], "
    "$13, $14::text[], $15::text[], $16::text[], $17::text[])";

const char *pgs_auditsql_statement(void)
{
    return AUDIT_SQL;
}

static char *string_array(const pgs_audit_event_t *const *evs, size_t n, size_t field_offset)
{
    pgs_sbuf_t sb = {0};
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(&sb, i);
        const char *v = *(const char *const *)((const char *)evs[i] + field_offset);
        v = v ? v : "";
        pgs_sqlbatch_put_element(&sb, v, strlen(v));
    }
    return pgs_sqlbatch_array_close(&sb);
}

/* As string_array, with SQL NULL for a NULL field (AuditEvent v2's optional ones). */
static char *nullable_array(const pgs_audit_event_t *const *evs, size_t n, size_t field_offset)
{
    pgs_sbuf_t sb = {0};
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(&sb, i);
        const char *v = *(const char *const *)((const char *)evs[i] + field_offset);
        if (v)
            pgs_sqlbatch_put_element(&sb, v, strlen(v));
        else
            pgs_sbuf_puts(&sb, "NULL");
    }
    return pgs_sqlbatch_array_close(&sb);
}

static char *details_json(const pgs_audit_event_t *ev)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < ev->details_cnt; i++) {
        const pgs_value_t *v = &ev->details[i].value;
        json_object_set_new(obj, ev->details[i].name,
                            v->type == PGS_VAL_STRING ? json_stringn(v->u.s.ptr, v->u.s.len)
                                                      : json_null());
    }
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s ? s : pgs_xalloc_strdup("{}");
}

void pgs_auditsql_params(const pgs_audit_event_t *const *evs, const int32_t *partitions,
                         const int64_t *offsets, size_t n, const char *topic,
                         pgs_batch_params_t *out)
{
    out->n = PGS_AUDITSQL_NPARAMS;
    out->block = NULL;
    out->values = pgs_xalloc_calloc(PGS_AUDITSQL_NPARAMS, sizeof(char *));
    /* each row's own clinic, which pgscribe.expect_clinic checks against
     * the transaction's: one scalar would write every row as the first's */
    out->values[0] = string_array(evs, n, offsetof(pgs_audit_event_t, clinic_id));
    out->values[1] = string_array(evs, n, offsetof(pgs_audit_event_t, event_id));
    out->values[2] = string_array(evs, n, offsetof(pgs_audit_event_t, actor));
    out->values[3] = string_array(evs, n, offsetof(pgs_audit_event_t, action));
    out->values[4] = string_array(evs, n, offsetof(pgs_audit_event_t, resource_type));
    out->values[5] = string_array(evs, n, offsetof(pgs_audit_event_t, resource_id));
    out->values[6] = string_array(evs, n, offsetof(pgs_audit_event_t, outcome));
    pgs_sbuf_t sb = {0};
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(&sb, i);
        pgs_sbuf_printf(&sb, "%lld", (long long)evs[i]->occurred_at_ms);
    }
    out->values[7] = pgs_sqlbatch_array_close(&sb);
    out->values[8] = string_array(evs, n, offsetof(pgs_audit_event_t, source));
    for (size_t i = 0; i < n; i++) {
        pgs_sqlbatch_array_sep(&sb, i);
        char *json = details_json(evs[i]);
        pgs_sqlbatch_put_element(&sb, json, strlen(json));
        free(json);
    }
    out->values[9] = pgs_sqlbatch_array_close(&sb);
    out->values[10] = pgs_sqlbatch_array_int32(partitions, n);
    out->values[11] = pgs_sqlbatch_array_int64(offsets, n);
    out->values[12] = pgs_xalloc_strdup(topic);
    out->values[13] = nullable_array(evs, n, offsetof(pgs_audit_event_t, recipient));
    out->values[14] = nullable_array(evs, n, offsetof(pgs_audit_event_t, purpose));
    out->values[15] = nullable_array(evs, n, offsetof(pgs_audit_event_t, description));
    out->values[16] = nullable_array(evs, n, offsetof(pgs_audit_event_t, traceparent));
}
