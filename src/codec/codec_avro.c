/* Avro values <-> pgscribe structs, with field-name schema resolution. */
#include <math.h>
#include <string.h>

#include "codec/codec_internal.h"

/* Schema resolution by field name: avro-c 1.11.1's resolved writer refuses a
 * reader field the writer lacks ("Reader field expected_version doesn't appear
 * in writer") instead of using the reader's default. So a message is read
 * with its own writer schema, and each reader (v2) field is looked up by name
 * in it; a field the writer does not have takes the reader schema's default
 * (expected_version: null, data: {}). */
static int field_get(avro_value_t *rec, const char *name, avro_value_t *out)
{
    return avro_schema_record_field_get_index(avro_value_get_schema(rec), name) >= 0 &&
           avro_value_get_by_name(rec, name, out, NULL) == 0;
}

static pgs_err_t decode_fail(const char *field, char *errstr, size_t errstr_size)
{
    pgs_codec_check_errf(errstr, errstr_size, "field '%s': not readable from the writer schema",
                         field);
    return PGS_E_DECODE_AVRO;
}

static pgs_err_t get_text(avro_value_t *rec, const char *name, pgs_arena_t *arena, const char **out,
                          char *errstr, size_t errstr_size)
{
    avro_value_t f;
    const char *s;
    size_t size;
    if (!field_get(rec, name, &f) || avro_value_get_string(&f, &s, &size) != 0)
        return decode_fail(name, errstr, errstr_size);
    *out = pgs_arena_strndup(arena, s, size ? size - 1 : 0);
    return PGS_OK;
}

/* A ["null", "string"] field that a v1 writer lacks: NULL when absent or null. */
static pgs_err_t get_optional_text(avro_value_t *rec, const char *name, pgs_arena_t *arena,
                                   const char **out, char *errstr, size_t errstr_size)
{
    avro_value_t f, b;
    int disc;
    const char *s;
    size_t size;
    *out = NULL;
    if (!field_get(rec, name, &f))
        return PGS_OK;
    if (avro_value_get_discriminant(&f, &disc) || avro_value_get_current_branch(&f, &b))
        return decode_fail(name, errstr, errstr_size);
    if (disc == 0)
        return PGS_OK;
    if (avro_value_get_string(&b, &s, &size) != 0)
        return decode_fail(name, errstr, errstr_size);
    *out = pgs_arena_strndup(arena, s, size ? size - 1 : 0);
    return PGS_OK;
}

static pgs_err_t get_long(avro_value_t *rec, const char *name, int64_t *out, char *errstr,
                          size_t errstr_size)
{
    avro_value_t f;
    if (!field_get(rec, name, &f) || avro_value_get_long(&f, out) != 0)
        return decode_fail(name, errstr, errstr_size);
    return PGS_OK;
}

/* The Value union's branch order (null, boolean, long, double, string,
 * bytes) is pgs_value_type_t's order, so the discriminant is the type. */
static int value_from_avro(avro_value_t *u, pgs_arena_t *arena, pgs_value_t *v)
{
    int disc;
    avro_value_t b;
    const void *p;
    size_t size;
    if (avro_value_get_discriminant(u, &disc) || avro_value_get_current_branch(u, &b))
        return -1;
    v->type = (pgs_value_type_t)disc;
    switch (v->type) {
    case PGS_VAL_NULL:
        return 0;
    case PGS_VAL_BOOL:
        return avro_value_get_boolean(&b, &v->u.b);
    case PGS_VAL_LONG:
        return avro_value_get_long(&b, &v->u.l);
    case PGS_VAL_DOUBLE:
        return avro_value_get_double(&b, &v->u.d);
    case PGS_VAL_STRING:
        if (avro_value_get_string(&b, (const char **)&p, &size))
            return -1;
        v->u.s.len = size ? size - 1 : 0;
        v->u.s.ptr = pgs_arena_strndup(arena, p, v->u.s.len);
        return 0;
    case PGS_VAL_BYTES:
        if (avro_value_get_bytes(&b, &p, &size))
            return -1;
        v->u.s.len = size;
        v->u.s.ptr = pgs_arena_strndup(arena, p, size);
        return 0;
    }
    return -1;
}

static pgs_err_t get_fields(avro_value_t *rec, const char *name, int optional, pgs_arena_t *arena,
                            pgs_field_t **out, size_t *cnt, char *errstr, size_t errstr_size)
{
    avro_value_t map;
    size_t n;
    *out = NULL;
    *cnt = 0;
    if (!field_get(rec, name, &map))
        return optional ? PGS_OK : decode_fail(name, errstr, errstr_size);
    if (avro_value_get_size(&map, &n))
        return decode_fail(name, errstr, errstr_size);
    pgs_field_t *f = n ? pgs_arena_alloc(arena, n * sizeof(*f)) : NULL;
    for (size_t i = 0; i < n; i++) {
        avro_value_t e;
        const char *key;
        if (avro_value_get_by_index(&map, i, &e, &key))
            return decode_fail(name, errstr, errstr_size);
        f[i].name = pgs_arena_strdup(arena, key);
        if (avro_value_get_type(&e) == AVRO_STRING) { /* AuditEvent.details */
            const char *s;
            size_t size;
            if (avro_value_get_string(&e, &s, &size))
                return decode_fail(name, errstr, errstr_size);
            f[i].value.type = PGS_VAL_STRING;
            f[i].value.u.s.len = size ? size - 1 : 0;
            f[i].value.u.s.ptr = pgs_arena_strndup(arena, s, f[i].value.u.s.len);
        } else if (value_from_avro(&e, arena, &f[i].value)) {
            return decode_fail(name, errstr, errstr_size);
        }
    }
    *out = f;
    *cnt = n;
    return PGS_OK;
}

pgs_err_t pgs_codec_avro_to_command(avro_value_t *rec, pgs_command_t *cmd, char *errstr,
                                    size_t errstr_size)
{
    pgs_arena_t *a = cmd->arena;
    avro_value_t f, b;
    int op, disc;
    pgs_err_t err;
    if ((err = get_text(rec, "command_id", a, &cmd->command_id, errstr, errstr_size)) ||
        (err = get_text(rec, "clinic_id", a, &cmd->clinic_id, errstr, errstr_size)) ||
        (err = get_text(rec, "actor", a, &cmd->actor, errstr, errstr_size)) ||
        (err = get_text(rec, "entity", a, &cmd->entity, errstr, errstr_size)))
        return err;
    if (!field_get(rec, "op", &f) || avro_value_get_enum(&f, &op))
        return decode_fail("op", errstr, errstr_size);
    cmd->op = (pgs_op_t)op;
    if ((err = get_fields(rec, "key", 0, a, &cmd->key, &cmd->key_cnt, errstr, errstr_size)) ||
        (err = get_fields(rec, "data", 1, a, &cmd->data, &cmd->data_cnt, errstr, errstr_size)))
        return err;
    cmd->has_expected_version = 0;
    cmd->expected_version = 0;
    if (field_get(rec, "expected_version", &f)) {
        if (avro_value_get_discriminant(&f, &disc) || avro_value_get_current_branch(&f, &b))
            return decode_fail("expected_version", errstr, errstr_size);
        if (disc == 1) {
            if (avro_value_get_long(&b, &cmd->expected_version))
                return decode_fail("expected_version", errstr, errstr_size);
            cmd->has_expected_version = 1;
        }
    }
    return get_long(rec, "issued_at", &cmd->issued_at_ms, errstr, errstr_size);
}

pgs_err_t pgs_codec_avro_to_audit(avro_value_t *rec, pgs_audit_event_t *ev, char *errstr,
                                  size_t errstr_size)
{
    pgs_arena_t *a = ev->arena;
    avro_value_t f;
    int idx;
    pgs_err_t err;
    if ((err = get_text(rec, "event_id", a, &ev->event_id, errstr, errstr_size)) ||
        (err = get_text(rec, "clinic_id", a, &ev->clinic_id, errstr, errstr_size)) ||
        (err = get_text(rec, "actor", a, &ev->actor, errstr, errstr_size)) ||
        (err = get_text(rec, "action", a, &ev->action, errstr, errstr_size)) ||
        (err = get_text(rec, "resource_type", a, &ev->resource_type, errstr, errstr_size)) ||
        (err = get_text(rec, "resource_id", a, &ev->resource_id, errstr, errstr_size)))
        return err;
    if (!field_get(rec, "outcome", &f) || avro_value_get_enum(&f, &idx))
        return decode_fail("outcome", errstr, errstr_size);
    const char *sym = avro_schema_enum_get(avro_value_get_schema(&f), idx);
    if (!sym)
        return decode_fail("outcome", errstr, errstr_size);
    ev->outcome = pgs_arena_strdup(a, sym);
    if ((err = get_long(rec, "occurred_at", &ev->occurred_at_ms, errstr, errstr_size)) ||
        (err = get_text(rec, "source", a, &ev->source, errstr, errstr_size)))
        return err;
    if ((err = get_fields(rec, "details", 1, a, &ev->details, &ev->details_cnt, errstr,
                          errstr_size)) ||
        (err = get_optional_text(rec, "recipient", a, &ev->recipient, errstr, errstr_size)) ||
        (err = get_optional_text(rec, "purpose", a, &ev->purpose, errstr, errstr_size)))
        return err;
    return get_optional_text(rec, "description", a, &ev->description, errstr, errstr_size);
}

/* Encoding side. A NULL string is written as "" so that encoding never
 * crashes; the decoder's checks then say what is missing. */
static int set_text(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    s = s ? s : "";
    return avro_value_set_string_len(&f, s, strlen(s) + 1);
}

static int set_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    return avro_value_set_long(&f, v);
}

static int set_double(avro_value_t *rec, const char *name, double v)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    return avro_value_set_double(&f, v);
}

static int value_to_avro(const pgs_value_t *v, avro_value_t *u)
{
    avro_value_t b;
    if ((unsigned)v->type > PGS_VAL_BYTES || avro_value_set_branch(u, (int)v->type, &b))
        return -1;
    switch (v->type) {
    case PGS_VAL_NULL:
        return avro_value_set_null(&b);
    case PGS_VAL_BOOL:
        return avro_value_set_boolean(&b, v->u.b ? 1 : 0);
    case PGS_VAL_LONG:
        return avro_value_set_long(&b, v->u.l);
    case PGS_VAL_DOUBLE:
        return avro_value_set_double(&b, v->u.d);
    case PGS_VAL_STRING: /* the size avro-c wants counts a terminating NUL */
        if (!v->u.s.ptr)
            return avro_value_set_string_len(&b, "", 1);
        if (v->u.s.ptr[v->u.s.len] != '\0')
            return -1;
        return avro_value_set_string_len(&b, v->u.s.ptr, v->u.s.len + 1);
    case PGS_VAL_BYTES:
        return avro_value_set_bytes(&b, (void *)(v->u.s.ptr ? v->u.s.ptr : ""), v->u.s.len);
    }
    return -1;
}

static int set_fields(avro_value_t *rec, const char *name, const pgs_field_t *f, size_t n)
{
    avro_value_t map, e;
    if (avro_value_get_by_name(rec, name, &map, NULL))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].name || avro_value_add(&map, f[i].name, &e, NULL, NULL))
            return -1;
        if (avro_value_get_type(&e) == AVRO_STRING) {
            const char *s =
                f[i].value.type == PGS_VAL_STRING && f[i].value.u.s.ptr ? f[i].value.u.s.ptr : "";
            if (avro_value_set_string(&e, s))
                return -1;
        } else if (value_to_avro(&f[i].value, &e)) {
            return -1;
        }
    }
    return 0;
}

int pgs_codec_avro_from_command(const pgs_command_t *cmd, avro_value_t *rec)
{
    avro_value_t f, b;
    if (avro_value_reset(rec) || set_text(rec, "command_id", cmd->command_id) ||
        set_text(rec, "clinic_id", cmd->clinic_id) || set_text(rec, "actor", cmd->actor) ||
        set_text(rec, "entity", cmd->entity))
        return -1;
    if ((unsigned)cmd->op > PGS_OP_DELETE || avro_value_get_by_name(rec, "op", &f, NULL) ||
        avro_value_set_enum(&f, (int)cmd->op))
        return -1;
    if (set_fields(rec, "key", cmd->key, cmd->key_cnt) ||
        set_fields(rec, "data", cmd->data, cmd->data_cnt))
        return -1;
    /* An older writer schema without the field cannot carry it: dropped. */
    if (field_get(rec, "expected_version", &f)) {
        if (avro_value_set_branch(&f, cmd->has_expected_version ? 1 : 0, &b))
            return -1;
        if (cmd->has_expected_version ? avro_value_set_long(&b, cmd->expected_version)
                                      : avro_value_set_null(&b))
            return -1;
    }
    return set_long(rec, "issued_at", cmd->issued_at_ms);
}

int pgs_codec_avro_from_audit(const pgs_audit_event_t *ev, avro_value_t *rec)
{
    avro_value_t f;
    int idx;
    if (avro_value_reset(rec) || set_text(rec, "event_id", ev->event_id) ||
        set_text(rec, "clinic_id", ev->clinic_id) || set_text(rec, "actor", ev->actor) ||
        set_text(rec, "action", ev->action) || set_text(rec, "resource_type", ev->resource_type) ||
        set_text(rec, "resource_id", ev->resource_id) || set_text(rec, "source", ev->source) ||
        set_long(rec, "occurred_at", ev->occurred_at_ms))
        return -1;
    if (!ev->outcome || avro_value_get_by_name(rec, "outcome", &f, NULL))
        return -1;
    idx = avro_schema_enum_get_by_name(avro_value_get_schema(&f), ev->outcome);
    if (idx < 0 || avro_value_set_enum(&f, idx))
        return -1;
    if (set_fields(rec, "details", ev->details, ev->details_cnt))
        return -1;
    /* v2's optional fields, when the record has them */
    const char *opt[] = {"recipient", ev->recipient, "purpose",
                         ev->purpose, "description", ev->description};
    for (int i = 0; i < 6; i += 2) {
        avro_value_t b;
        if (!field_get(rec, opt[i], &f))
            continue;
        if (avro_value_set_branch(&f, opt[i + 1] ? 1 : 0, &b))
            return -1;
        if (opt[i + 1] && avro_value_set_string_len(&b, opt[i + 1], strlen(opt[i + 1]) + 1))
            return -1;
        if (!opt[i + 1] && avro_value_set_null(&b))
            return -1;
    }
    return 0;
}

int pgs_codec_avro_from_metrics(const pgs_metrics_record_t *m, avro_value_t *rec)
{
    avro_value_t lat, arr, e;
    if (avro_value_reset(rec) || set_text(rec, "worker_id", m->worker_id) ||
        set_long(rec, "interval_start", m->interval_start_ms) ||
        set_long(rec, "interval_end", m->interval_end_ms) ||
        set_long(rec, "consumed", m->consumed) || set_long(rec, "applied", m->applied) ||
        set_long(rec, "duplicates", m->duplicates) || set_long(rec, "retried", m->retried) ||
        set_long(rec, "dead_lettered", m->dead_lettered) || set_long(rec, "failed", m->failed) ||
        set_long(rec, "transactions", m->transactions) ||
        set_long(rec, "in_flight", m->in_flight) ||
        set_long(rec, "in_flight_transactions", m->in_flight_transactions) ||
        set_long(rec, "in_flight_limit", m->in_flight_limit) ||
        set_long(rec, "consumer_lag", m->consumer_lag) ||
        set_text(rec, "breaker_state", m->breaker_state) ||
        set_long(rec, "tenant_violations", m->tenant_violations))
        return -1;
    if (avro_value_get_by_name(rec, "commit_latency_ms", &lat, NULL) ||
        set_double(&lat, "p50", m->commit_p50_ms) || set_double(&lat, "p95", m->commit_p95_ms) ||
        set_double(&lat, "p99", m->commit_p99_ms))
        return -1;
    if (avro_value_get_by_name(rec, "clinics", &arr, NULL))
        return -1;
    for (size_t i = 0; i < m->clinic_cnt; i++) {
        const pgs_clinic_stat_t *c = &m->clinics[i];
        if (avro_value_append(&arr, &e, NULL) || set_text(&e, "clinic_id", c->clinic_id) ||
            set_long(&e, "applied", c->applied) || set_long(&e, "db_time_us", c->db_time_us) ||
            set_long(&e, "tenant_violations", c->tenant_violations))
            return -1;
    }
    return 0;
}

/* Generic Avro -> JSON with the schema's field names. Unlike avro-c's own
 * avro_value_to_json, a non-finite double becomes null instead of failing
 * the whole record (a latency quantile of an empty interval may be NaN). */
json_t *pgs_codec_avro_to_json(avro_value_t *v)
{
    json_t *out = NULL;
    avro_value_t c;
    const char *name;
    size_t n, size;
    const void *p;
    int32_t i32;
    int64_t i64;
    int ib;
    double d;
    float fl;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return json_null();
    case AVRO_BOOLEAN:
        return avro_value_get_boolean(v, &ib) ? NULL : json_boolean(ib);
    case AVRO_INT32:
        return avro_value_get_int(v, &i32) ? NULL : json_integer(i32);
    case AVRO_INT64:
        return avro_value_get_long(v, &i64) ? NULL : json_integer(i64);
    case AVRO_FLOAT:
        if (avro_value_get_float(v, &fl))
            return NULL;
        return isfinite(fl) ? json_real(fl) : json_null();
    case AVRO_DOUBLE:
        if (avro_value_get_double(v, &d))
            return NULL;
        return isfinite(d) ? json_real(d) : json_null();
    case AVRO_STRING:
        if (avro_value_get_string(v, (const char **)&p, &size))
            return NULL;
        return json_stringn(p, size ? size - 1 : 0);
    case AVRO_ENUM:
        if (avro_value_get_enum(v, &i32) ||
            !(name = avro_schema_enum_get(avro_value_get_schema(v), i32)))
            return NULL;
        return json_string(name);
    case AVRO_UNION:
        return avro_value_get_current_branch(v, &c) ? NULL : pgs_codec_avro_to_json(&c);
    case AVRO_RECORD:
    case AVRO_MAP:
        out = json_object();
        if (!out || avro_value_get_size(v, &n))
            goto fail;
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_by_index(v, i, &c, &name))
                goto fail;
            if (json_object_set_new(out, name, pgs_codec_avro_to_json(&c)))
                goto fail;
        }
        return out;
    case AVRO_ARRAY:
        out = json_array();
        if (!out || avro_value_get_size(v, &n))
            goto fail;
        for (size_t i = 0; i < n; i++) {
            if (avro_value_get_by_index(v, i, &c, NULL) ||
                json_array_append_new(out, pgs_codec_avro_to_json(&c)))
                goto fail;
        }
        return out;
    default:
        return NULL;
    }
fail:
    json_decref(out);
    return NULL;
}
