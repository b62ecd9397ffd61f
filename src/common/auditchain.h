/* The audit trail's canonical row encoding and hash chain (docs/audit.md):
 * the same bytes audit.canonical() builds in the database, recomputed by
 * `pgscribe audit verify`. Pure code: no I/O. */
#ifndef PGSCRIBE_AUDITCHAIN_H
#define PGSCRIBE_AUDITCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

/** Fields of an audit.events row in canonical order (prev_hash and hash,
 *  which the encoding leaves out, are not fields). */
enum {
    PGS_AUDITCHAIN_CLINIC_ID = 0,
    PGS_AUDITCHAIN_SEQ,
    PGS_AUDITCHAIN_KIND,
    PGS_AUDITCHAIN_EVENT_ID,
    PGS_AUDITCHAIN_COMMAND_ID,
    PGS_AUDITCHAIN_OCCURRED_US, /* int64 microseconds since the Unix epoch, decimal */
    PGS_AUDITCHAIN_RECORDED_US,
    PGS_AUDITCHAIN_ACTOR,
    PGS_AUDITCHAIN_ACTION,
    PGS_AUDITCHAIN_ENTITY,
    PGS_AUDITCHAIN_ROW_KEY,
    PGS_AUDITCHAIN_COLUMNS, /* an array: see pgs_auditchain_row_t.columns */
    PGS_AUDITCHAIN_OUTCOME,
    PGS_AUDITCHAIN_RECIPIENT,
    PGS_AUDITCHAIN_PURPOSE,
    PGS_AUDITCHAIN_DESCRIPTION,
    PGS_AUDITCHAIN_SOURCE,
    PGS_AUDITCHAIN_DETAILS,
    PGS_AUDITCHAIN_SOURCE_TOPIC,
    PGS_AUDITCHAIN_SOURCE_PARTITION,
    PGS_AUDITCHAIN_SOURCE_OFFSET,
    PGS_AUDITCHAIN_TRACEPARENT,
    PGS_AUDITCHAIN_NFIELDS
};

#define PGS_AUDITCHAIN_HASH_SIZE 32
/** Most elements of the columns array a row may carry. */
#define PGS_AUDITCHAIN_MAX_COLUMNS 256

/** One field: @c ptr NULL is SQL NULL. */
typedef struct {
    const char *ptr;
    size_t len;
} pgs_auditchain_field_t;

/** A row's fields as text, in canonical order. The columns field is given
 *  by @c columns (its @c fields entry is ignored): @c ncolumns < 0 is NULL. */
typedef struct {
    pgs_auditchain_field_t fields[PGS_AUDITCHAIN_NFIELDS];
    int ncolumns;
    pgs_auditchain_field_t columns[PGS_AUDITCHAIN_MAX_COLUMNS];
} pgs_auditchain_row_t;

/** @brief Appends @p row's canonical encoding to @p out. */
void pgs_auditchain_encode(const pgs_auditchain_row_t *row, pgs_sbuf_t *out);

/**
 * @brief hash = SHA-256(prev ‖ canonical(row)), using @p scratch for the
 *        encoding (reset first; reused across calls to avoid allocation).
 * @returns 0, or -1 if OpenSSL fails.
 */
int pgs_auditchain_hash(const uint8_t prev[PGS_AUDITCHAIN_HASH_SIZE],
                        const pgs_auditchain_row_t *row, pgs_sbuf_t *scratch,
                        uint8_t out[PGS_AUDITCHAIN_HASH_SIZE]);

/**
 * @brief Parses a PostgreSQL text[] literal ("{a,\"b c\",NULL}") into
 *        @p row's columns, pointing into @p buf, which is unescaped in place.
 * @returns 0, or -1 for a malformed literal or too many elements.
 */
int pgs_auditchain_parse_array(char *buf, size_t len, pgs_auditchain_row_t *row);

#endif
