/* SQL migrations: the pure parts of `pgscribe migrate` (file names, ordering,
 * checksums), apart from the database work so unit tests can reach them. */
#ifndef PGSCRIBE_MIGRATE_H
#define PGSCRIBE_MIGRATE_H

#include <stddef.h>

/** Hex SHA-256 plus NUL. */
#define PGS_MIGRATE_CHECKSUM_LEN 65

typedef struct {
    int version; /* the NNNN of NNNN_name.sql */
    char *name;  /* file name, e.g. "0003_clinic_schema.sql" */
    char *path;  /* dir + "/" + name */
} pgs_migrate_file_t;

/**
 * @brief Parses a migration file name `NNNN_name.sql` (1 to 9 digits, an
 *        underscore, a non-empty name, ".sql").
 * @returns 0 and sets *version, or -1 if the name does not follow the pattern.
 */
int pgs_migrate_parse_name(const char *name, int *version);

/**
 * @brief Lists the migrations of @p dir sorted by version. Files not ending in
 *        ".sql" are ignored; a ".sql" file with a malformed name, or two files
 *        with one version, is an error (a migration must never be skipped).
 * @returns 0 and sets *files (free with pgs_migrate_files_free) and *count, or
 *          -1 with a message in @p errstr.
 */
int pgs_migrate_scan(const char *dir, pgs_migrate_file_t **files, size_t *count, char *errstr,
                     size_t errstr_size);

void pgs_migrate_files_free(pgs_migrate_file_t *files, size_t count);

/** @brief Lower-case hex SHA-256 of @p len bytes into @p out. @returns 0 or -1. */
int pgs_migrate_checksum(const void *data, size_t len, char out[PGS_MIGRATE_CHECKSUM_LEN]);

#endif
