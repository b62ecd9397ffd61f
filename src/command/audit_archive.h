/* `pgscribe audit archive` and `pgscribe audit verify --archive`
 * (docs/audit.md, "Retention and archives"). */
#ifndef PGSCRIBE_AUDIT_ARCHIVE_H
#define PGSCRIBE_AUDIT_ARCHIVE_H

/**
 * @brief `pgscribe audit archive [--dry-run] [--dir DIR] [--retention D]`:
 *        archives, verifies and retires each month of audit.events older
 *        than the retention, oldest first.
 * @returns an exit code (common/cli.h).
 */
int pgs_audit_archive_main(int argc, char **argv);

/**
 * @brief `pgscribe audit verify --archive FILE`: checks FILE against its
 *        manifest and prints the result.
 * @returns 0 when it verifies, 1 naming the problem otherwise.
 */
int pgs_audit_archive_verify_main(const char *path);

#endif
