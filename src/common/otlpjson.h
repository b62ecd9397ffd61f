/* OTLP/JSON: finished spans encoded as an ExportTraceServiceRequest in the
 * protobuf JSON mapping OpenTelemetry specifies for OTLP
 * (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
 * lowerCamelCase names, trace and span ids as lower-case hex, 64-bit
 * integers and times as decimal strings, enums as integers. */
#ifndef PGSCRIBE_OTLPJSON_H
#define PGSCRIBE_OTLPJSON_H

#include <stddef.h>
#include <stdint.h>

#define PGS_OTLP_MAX_ATTRS       24
#define PGS_OTLP_MAX_EVENTS      8
#define PGS_OTLP_MAX_EVENT_ATTRS 4

/** SpanKind of opentelemetry/proto/trace/v1/trace.proto. */
typedef enum {
    PGS_OTLP_KIND_INTERNAL = 1,
    PGS_OTLP_KIND_SERVER = 2,
    PGS_OTLP_KIND_CLIENT = 3,
    PGS_OTLP_KIND_PRODUCER = 4,
    PGS_OTLP_KIND_CONSUMER = 5,
} pgs_otlp_kind_t;

/** Status.StatusCode. */
typedef enum {
    PGS_OTLP_STATUS_UNSET = 0,
    PGS_OTLP_STATUS_OK = 1,
    PGS_OTLP_STATUS_ERROR = 2,
} pgs_otlp_status_t;

typedef enum { PGS_OTLP_STR, PGS_OTLP_INT, PGS_OTLP_BOOL, PGS_OTLP_DOUBLE } pgs_otlp_type_t;

/** One attribute; the key is a string literal, a string value is owned. */
typedef struct {
    const char *key;
    pgs_otlp_type_t type;
    char *s;
    int64_t i; /* int, and bool (0 or 1) */
    double d;
} pgs_otlp_attr_t;

typedef struct {
    const char *name; /* a string literal */
    uint64_t time_ns;
    pgs_otlp_attr_t attrs[PGS_OTLP_MAX_EVENT_ATTRS];
    int nattrs;
} pgs_otlp_event_t;

/** One span. Attributes and events past their bounds are counted as
 *  dropped, as OTLP's dropped*Count fields expect. */
typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8];
    int has_parent;
    char *name; /* owned */
    pgs_otlp_kind_t kind;
    uint64_t start_ns, end_ns; /* Unix epoch nanoseconds */
    pgs_otlp_status_t status;
    char *status_msg; /* owned; PHI-free */
    pgs_otlp_attr_t attrs[PGS_OTLP_MAX_ATTRS];
    int nattrs;
    uint32_t dropped_attrs;
    pgs_otlp_event_t *events; /* owned; PGS_OTLP_MAX_EVENTS, allocated with the first */
    int nevents;
    uint32_t dropped_events;
} pgs_otlp_span_t;

/** The resource and instrumentation scope every span of a request shares. */
typedef struct {
    const pgs_otlp_attr_t *attrs;
    int nattrs;
    const char *scope_name;
    const char *scope_version;
} pgs_otlp_resource_t;

/** @brief Sets the span's name (copied); the rest of @p sp is zeroed. */
void pgs_otlp_span_init(pgs_otlp_span_t *sp, const char *name, pgs_otlp_kind_t kind);
/** @brief Frees what the span owns (not @p sp itself). */
void pgs_otlp_span_clear(pgs_otlp_span_t *sp);

void pgs_otlp_attr_str(pgs_otlp_span_t *sp, const char *key, const char *value);
void pgs_otlp_attr_int(pgs_otlp_span_t *sp, const char *key, int64_t value);
void pgs_otlp_attr_bool(pgs_otlp_span_t *sp, const char *key, int value);
void pgs_otlp_attr_double(pgs_otlp_span_t *sp, const char *key, double value);
/** @brief Sets the status; @p msg (copied, may be NULL) must be PHI-free. */
void pgs_otlp_span_status(pgs_otlp_span_t *sp, pgs_otlp_status_t status, const char *msg);

/** @brief Adds an event. @returns it, or NULL (counted as dropped) when the
 *         span holds PGS_OTLP_MAX_EVENTS already. */
pgs_otlp_event_t *pgs_otlp_event_add(pgs_otlp_span_t *sp, const char *name, uint64_t time_ns);
/** @brief An integer or string attribute of an event (past the bound: left out). */
void pgs_otlp_event_int(pgs_otlp_event_t *ev, const char *key, int64_t value);
void pgs_otlp_event_str(pgs_otlp_event_t *ev, const char *key, const char *value);

/**
 * @brief Encodes @p n spans under @p res as one ExportTraceServiceRequest.
 * @returns a malloc'd NUL-terminated JSON text (compact, keys in a fixed
 *          order), or NULL when out of memory.
 */
char *pgs_otlp_encode(const pgs_otlp_resource_t *res, pgs_otlp_span_t *const *spans, size_t n);

#endif
