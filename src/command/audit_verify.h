/* One clinic's chain check for `pgscribe audit verify` (command/audit.c). */
#ifndef PGSCRIBE_AUDIT_VERIFY_H
#define PGSCRIBE_AUDIT_VERIFY_H

#include <libpq-fe.h>
#include <stdint.h>

/** --from / --to as PostgreSQL timestamptz text; NULL when not given. */
typedef struct {
    const char *from;
    const char *to;
} pgs_audit_verify_range_t;

typedef struct {
    int64_t rows;
    int broken;         /* 1 once a link is broken; the rest of the chain is read, not judged */
    int64_t broken_seq; /* the first broken link */
    char what[160];     /* what is wrong there */
    char expected[65];  /* hex */
    char found[65];
    char error[256]; /* a database error: the chain was not verified */
} pgs_audit_verify_result_t;

/**
 * @brief Verifies @p clinic's chain on @p pg in one REPEATABLE READ snapshot:
 *        gapless seq (from 1 with a zero prev_hash, unless range->from),
 *        prev_hash linkage, each hash recomputed (common/auditchain.h), the
 *        last row against audit.chain_heads (unless range->to), and, over the
 *        whole chain, no recorded event id missing from it.
 * @locality any thread, one connection per thread.
 */
void pgs_audit_verify_clinic(PGconn *pg, const char *clinic, const pgs_audit_verify_range_t *range,
                             pgs_audit_verify_result_t *out);

#endif
