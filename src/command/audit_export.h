/* `pgscribe audit export` (docs/audit.md, "Export"): streams one clinic's
 * audit trail, with seq, prev_hash and hash so that a recipient can check
 * the chain, or its accounting of disclosures, as NDJSON or CSV. */
#ifndef PGSCRIBE_AUDIT_EXPORT_H
#define PGSCRIBE_AUDIT_EXPORT_H

#include <stddef.h>

/** @brief `pgscribe audit export --clinic C [--from T] [--to T]
 *         [--format ndjson|csv] [--disclosures] [-o FILE] [--progress]`. */
int pgs_audit_export_cmd(int argc, char **argv);

/**
 * @brief Undoes COPY's text-format escaping of one NDJSON line in place (a
 *        JSON text holds no raw control character, so only `\\` occurs).
 * @returns the new length.
 */
size_t pgs_audit_export_unescape(char *line, size_t len);

#endif
