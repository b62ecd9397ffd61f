/* Audit archive files (docs/audit.md, "Retention and archives"): a month of
 * audit.events as gzip-compressed CSV, and its JSON manifest. Reading a file
 * recomputes its SHA-256, counts its rows and re-verifies each clinic's chain
 * inside it; checking it against a manifest compares all of that. */
#ifndef PGSCRIBE_AUDIT_ARCHIVE_FILE_H
#define PGSCRIBE_AUDIT_ARCHIVE_FILE_H

#include <stddef.h>
#include <stdint.h>

/** The CSV header: the 22 canonical fields (timestamps as microseconds since
 *  the Unix epoch, the canonical text), then prev_hash and hash in hex. */
extern const char *const PGS_AUDIT_ARCHIVE_COLUMNS;

/** One clinic's chain boundaries within a file. */
typedef struct {
    char *clinic_id;
    int64_t rows;
    int64_t first_seq;
    uint8_t first_prev_hash[32];
    int64_t last_seq;
    uint8_t last_hash[32];
} pgs_audit_archive_clinic_t;

typedef struct {
    int64_t rows;
    uint8_t sha256[32]; /* of the compressed file */
    pgs_audit_archive_clinic_t *clinics;
    size_t nclinics;
    char problem[256]; /* the first problem found; empty when none */
} pgs_audit_archive_scan_t;

/**
 * @brief Reads the archive at @p path: SHA-256 of its bytes, then its rows,
 *        checking per clinic that seq has no gap, that each prev_hash is the
 *        previous row's hash and that each hash is recomputed from the row.
 * @returns 0, or -1 with @p out->problem set. Free with
 *          pgs_audit_archive_scan_free() either way.
 */
int pgs_audit_archive_scan(const char *path, pgs_audit_archive_scan_t *out);

void pgs_audit_archive_scan_free(pgs_audit_archive_scan_t *scan);

/** What a manifest says besides the scan. */
typedef struct {
    const char *partition; /* audit.events_YYYY_MM */
    const char *month;     /* YYYY-MM */
    const char *from;      /* the month's bounds, ISO 8601 UTC */
    const char *to;
    const char *file; /* the archive's file name, without directory */
    const char *system_identifier;
    const char *created_at;
} pgs_audit_archive_meta_t;

/**
 * @brief Writes the manifest of @p scan to @p path (a temporary name, fsync,
 *        rename, fsync of the directory) and its SHA-256 to @p sha256.
 * @returns 0, or -1 with a message in @p err.
 */
int pgs_audit_archive_write_manifest(const char *path, const pgs_audit_archive_meta_t *meta,
                                     const pgs_audit_archive_scan_t *scan, uint8_t sha256[32],
                                     char *err, size_t errlen);

/**
 * @brief Checks the archive @p data_path against its manifest
 *        @p manifest_path: checksum, row count, each clinic's boundaries and
 *        the chains inside the file. @p expect_rows >= 0 also requires that
 *        many rows.
 * @returns 0, or -1 with the problem in @p problem.
 */
int pgs_audit_archive_check(const char *data_path, const char *manifest_path, int64_t expect_rows,
                            char *problem, size_t problemlen);

/** @brief The manifest path of an archive: "X.csv.gz" -> "X.manifest.json" (malloc'd). */
char *pgs_audit_archive_manifest_path(const char *data_path);

/** @brief fsync()s @p path's directory. @returns 0 or -1. */
int pgs_audit_archive_sync_dir(const char *path);

#endif
