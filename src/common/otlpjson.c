/* OTLP/JSON encoding of spans: the ExportTraceServiceRequest an OTLP/HTTP
 * receiver takes with content-type application/json, and the OpenTelemetry
 * Collector's Kafka receiver reads with `encoding: otlp_json`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/otlpjson.h"
#include "common/traceparent.h"

static char *dup_or_abort(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

void pgs_otlp_span_init(pgs_otlp_span_t *sp, const char *name, pgs_otlp_kind_t kind)
{
    memset(sp, 0, sizeof(*sp));
    sp->name = dup_or_abort(name);
    sp->kind = kind;
}

static void attrs_clear(pgs_otlp_attr_t *a, int n)
{
    for (int i = 0; i < n; i++)
        free(a[i].s);
}

void pgs_otlp_span_clear(pgs_otlp_span_t *sp)
{
    if (!sp)
        return;
    free(sp->name);
    free(sp->status_msg);
    attrs_clear(sp->attrs, sp->nattrs);
    for (int e = 0; e < sp->nevents; e++)
        attrs_clear(sp->events[e].attrs, sp->events[e].nattrs);
    free(sp->events);
    memset(sp, 0, sizeof(*sp));
}

static pgs_otlp_attr_t *attr_slot(pgs_otlp_span_t *sp, const char *key, pgs_otlp_type_t type)
{
    if (sp->nattrs == PGS_OTLP_MAX_ATTRS) {
        sp->dropped_attrs++;
        return NULL;
    }
    pgs_otlp_attr_t *a = &sp->attrs[sp->nattrs++];
    memset(a, 0, sizeof(*a));
    a->key = key;
    a->type = type;
    return a;
}

void pgs_otlp_attr_str(pgs_otlp_span_t *sp, const char *key, const char *value)
{
    pgs_otlp_attr_t *a = attr_slot(sp, key, PGS_OTLP_STR);
    if (a)
        a->s = dup_or_abort(value);
}

void pgs_otlp_attr_int(pgs_otlp_span_t *sp, const char *key, int64_t value)
{
    pgs_otlp_attr_t *a = attr_slot(sp, key, PGS_OTLP_INT);
    if (a)
        a->i = value;
}

void pgs_otlp_attr_bool(pgs_otlp_span_t *sp, const char *key, int value)
{
    pgs_otlp_attr_t *a = attr_slot(sp, key, PGS_OTLP_BOOL);
    if (a)
        a->i = value != 0;
}

void pgs_otlp_attr_double(pgs_otlp_span_t *sp, const char *key, double value)
{
    pgs_otlp_attr_t *a = attr_slot(sp, key, PGS_OTLP_DOUBLE);
    if (a)
        a->d = value;
}

void pgs_otlp_span_status(pgs_otlp_span_t *sp, pgs_otlp_status_t status, const char *msg)
{
    sp->status = status;
    free(sp->status_msg);
    sp->status_msg = msg ? dup_or_abort(msg) : NULL;
}

pgs_otlp_event_t *pgs_otlp_event_add(pgs_otlp_span_t *sp, const char *name, uint64_t time_ns)
{
    if (sp->nevents == PGS_OTLP_MAX_EVENTS) {
        sp->dropped_events++;
        return NULL;
    }
    /* most spans have no event: their room is taken with the first */
    if (!sp->events) {
        sp->events = calloc(PGS_OTLP_MAX_EVENTS, sizeof(*sp->events));
        if (!sp->events)
            abort();
    }
    pgs_otlp_event_t *ev = &sp->events[sp->nevents++];
    memset(ev, 0, sizeof(*ev));
    ev->name = name;
    ev->time_ns = time_ns;
    return ev;
}

void pgs_otlp_event_int(pgs_otlp_event_t *ev, const char *key, int64_t value)
{
    if (!ev || ev->nattrs == PGS_OTLP_MAX_EVENT_ATTRS)
        return;
    pgs_otlp_attr_t *a = &ev->attrs[ev->nattrs++];
    memset(a, 0, sizeof(*a));
    a->key = key;
    a->type = PGS_OTLP_INT;
    a->i = value;
}

void pgs_otlp_event_str(pgs_otlp_event_t *ev, const char *key, const char *value)
{
    if (!ev || ev->nattrs == PGS_OTLP_MAX_EVENT_ATTRS)
        return;
    pgs_otlp_attr_t *a = &ev->attrs[ev->nattrs++];
    memset(a, 0, sizeof(*a));
    a->key = key;
    a->type = PGS_OTLP_STR;
    a->s = dup_or_abort(value);
}

/* json_string refuses invalid UTF-8: such a text becomes empty rather than
 * failing the whole request */
static json_t *text_value(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

/* int64 and uint64 fields are decimal strings in the protobuf JSON mapping */
static json_t *u64_string(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

static json_t *hex_string(const uint8_t *bytes, size_t n)
{
    char buf[33];
    pgs_traceparent_hex(bytes, n, buf);
    return json_string(buf);
}

/* KeyValue { key, value: AnyValue } */
static json_t *encode_attrs(const pgs_otlp_attr_t *attrs, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const pgs_otlp_attr_t *a = &attrs[i];
        json_t *v = json_object();
        char num[24];
        switch (a->type) {
        case PGS_OTLP_STR:
            json_object_set_new(v, "stringValue", text_value(a->s));
            break;
        case PGS_OTLP_INT:
            snprintf(num, sizeof(num), "%" PRId64, a->i);
            json_object_set_new(v, "intValue", json_string(num));
            break;
        case PGS_OTLP_BOOL:
            json_object_set_new(v, "boolValue", json_boolean(a->i));
            break;
        case PGS_OTLP_DOUBLE:
            json_object_set_new(v, "doubleValue", json_real(a->d));
            break;
        }
        json_t *kv = json_object();
        json_object_set_new(kv, "key", json_string(a->key));
        json_object_set_new(kv, "value", v);
        json_array_append_new(arr, kv);
    }
    return arr;
}

static json_t *encode_span(const pgs_otlp_span_t *sp)
{
    json_t *o = json_object();
    json_object_set_new(o, "traceId", hex_string(sp->trace_id, 16));
    json_object_set_new(o, "spanId", hex_string(sp->span_id, 8));
    if (sp->has_parent)
        json_object_set_new(o, "parentSpanId", hex_string(sp->parent_span_id, 8));
    json_object_set_new(o, "name", text_value(sp->name));
    json_object_set_new(o, "kind", json_integer(sp->kind));
    json_object_set_new(o, "startTimeUnixNano", u64_string(sp->start_ns));
    json_object_set_new(o, "endTimeUnixNano", u64_string(sp->end_ns));
    json_object_set_new(o, "attributes", encode_attrs(sp->attrs, sp->nattrs));
    if (sp->dropped_attrs)
        json_object_set_new(o, "droppedAttributesCount", json_integer(sp->dropped_attrs));
    if (sp->nevents > 0) {
        json_t *evs = json_array();
        for (int e = 0; e < sp->nevents; e++) {
            const pgs_otlp_event_t *ev = &sp->events[e];
            json_t *eo = json_object();
            json_object_set_new(eo, "timeUnixNano", u64_string(ev->time_ns));
            json_object_set_new(eo, "name", json_string(ev->name));
            json_object_set_new(eo, "attributes", encode_attrs(ev->attrs, ev->nattrs));
            json_array_append_new(evs, eo);
        }
        json_object_set_new(o, "events", evs);
    }
    if (sp->dropped_events)
        json_object_set_new(o, "droppedEventsCount", json_integer(sp->dropped_events));
    json_t *st = json_object();
    if (sp->status_msg && *sp->status_msg)
        json_object_set_new(st, "message", text_value(sp->status_msg));
    json_object_set_new(st, "code", json_integer(sp->status));
    json_object_set_new(o, "status", st);
    return o;
}

char *pgs_otlp_encode(const pgs_otlp_resource_t *res, pgs_otlp_span_t *const *spans, size_t n)
{
    json_t *resource = json_object();
    json_object_set_new(resource, "attributes", encode_attrs(res->attrs, res->nattrs));
    json_t *scope = json_object();
    json_object_set_new(scope, "name", json_string(res->scope_name ? res->scope_name : ""));
    if (res->scope_version)
        json_object_set_new(scope, "version", json_string(res->scope_version));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, encode_span(spans[i]));
    json_t *ss = json_object();
    json_object_set_new(ss, "scope", scope);
    json_object_set_new(ss, "spans", arr);
    json_t *ssa = json_array();
    json_array_append_new(ssa, ss);
    json_t *rs = json_object();
    json_object_set_new(rs, "resource", resource);
    json_object_set_new(rs, "scopeSpans", ssa);
    json_t *rsa = json_array();
    json_array_append_new(rsa, rs);
    json_t *req = json_object();
    json_object_set_new(req, "resourceSpans", rsa);
    char *text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);
    return text;
}
