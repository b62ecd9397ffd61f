/* W3C Trace Context: the `traceparent` header a producer puts on a message
 * (https://www.w3.org/TR/trace-context/#traceparent-header), parsed and
 * written back. One parser for the whole worker: the tracer continues the
 * trace it names, the write audit stores it. */
#ifndef PGSCRIBE_TRACEPARENT_H
#define PGSCRIBE_TRACEPARENT_H

#include <stddef.h>
#include <stdint.h>

/** The header's text length: "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define PGS_TRACEPARENT_LEN 55

typedef struct {
    uint8_t version;      /* 0x00 today; a higher version is read by its 00 prefix */
    uint8_t trace_id[16]; /* never all zero */
    uint8_t span_id[8];   /* the parent's span id; never all zero */
    uint8_t flags;        /* bit 0: sampled */
} pgs_traceparent_t;

/**
 * @brief Parses @p len bytes of a traceparent header value (not
 *        NUL-terminated). Lower-case hex only, as the specification
 *        requires; version ff, an all-zero trace or span id, or a version
 *        00 value with trailing data are refused. A future version is read
 *        by its first four fields when followed by '-' (the specification's
 *        forward compatibility rule).
 * @returns 0 and fills @p out, or -1 when the value is not a valid traceparent.
 */
int pgs_traceparent_parse(const void *value, size_t len, pgs_traceparent_t *out);

/** @brief Writes the version 00 text form and a NUL into @p buf
 *         (PGS_TRACEPARENT_LEN + 1 bytes). */
void pgs_traceparent_format(const pgs_traceparent_t *tp, char buf[PGS_TRACEPARENT_LEN + 1]);

/** @brief Lower-case hex of @p n bytes into @p out (2n + 1 bytes, NUL-terminated). */
void pgs_traceparent_hex(const uint8_t *bytes, size_t n, char *out);

/** @returns non-zero when the sampled flag is set. */
static inline int pgs_traceparent_sampled(const pgs_traceparent_t *tp)
{
    return tp->flags & 1;
}

#endif
