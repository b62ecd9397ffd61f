/* Anchoring the audit trail outside the database (docs/audit.md,
 * "Anchoring"): `pgscribe audit anchor` publishes each clinic's chain head
 * to Kafka; `pgscribe audit verify --anchors FILE | --anchor-topic` checks
 * that the trail still holds, at each anchored seq, the anchored hash. */
#ifndef PGSCRIBE_AUDIT_ANCHOR_H
#define PGSCRIBE_AUDIT_ANCHOR_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/** One anchored head, as read back from a file or the anchor topic. */
typedef struct {
    char *clinic;
    int64_t seq;
    char hash[65];        /* lowercase hex */
    char anchored_at[40]; /* as published */
} pgs_audit_anchor_t;

typedef struct {
    pgs_audit_anchor_t *v;
    size_t n, cap;
} pgs_audit_anchors_t;

/** @brief `pgscribe audit anchor [-c FILE] [--topic T] [--conninfo C]`. */
int pgs_audit_anchor_cmd(int argc, char **argv);

/**
 * @brief Parses one anchor record (a JSON object with clinic_id, seq, hash,
 *        anchored_at) and appends it to @p out.
 * @returns 0, or -1 when the line is not an anchor record.
 */
int pgs_audit_anchor_parse(const char *line, size_t len, pgs_audit_anchors_t *out);

/**
 * @brief Reads anchors from @p file (one record a line; other lines are
 *        skipped) or, when @p file is NULL, from the whole of @p topic with
 *        the Kafka settings of config @p config_path.
 * @returns 0, or -1 with the reason on stderr.
 */
int pgs_audit_anchor_load(const char *file, const char *config_path, const char *topic,
                          pgs_audit_anchors_t *out);

/**
 * @brief Compares each anchor (of @p clinic only, when not NULL) with the row
 *        at its seq on @p pg; prints `broken: clinic C seq N: ...` for each
 *        mismatch or missing row, then a summary line. With @p from set, a
 *        missing row recorded before it is not a failure (retention).
 * @returns the number of anchors that do not hold, or -1 on a database error.
 */
int pgs_audit_anchor_check(PGconn *pg, const pgs_audit_anchors_t *a, const char *clinic,
                           const char *from);

void pgs_audit_anchors_free(pgs_audit_anchors_t *a);

/**
 * @brief verify's anchor step: loads the anchors (pgs_audit_anchor_load),
 *        connects with @p conninfo and checks them (pgs_audit_anchor_check).
 * @returns PGS_EXIT_OK, PGS_EXIT_FAILURE (an anchor does not hold, or they
 *          could not be read) or PGS_EXIT_DATABASE.
 */
int pgs_audit_verify_anchors(const char *conninfo, const char *file, const char *config_path,
                             const char *topic, const char *clinic, const char *from);

#endif
