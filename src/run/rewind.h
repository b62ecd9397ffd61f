/* Rewind after a restore: when the database forgot commands whose offsets
 * are committed in Kafka (a point-in-time restore, a promoted asynchronous
 * standby, a copy put back), the committed offset of a partition is moved
 * back to just past the highest offset the database still records, so the
 * forgotten commands are read and applied again (the idempotency records
 * turn the others into duplicates). Never forward. See
 * docs/operations.md#rewind-after-a-restore. */
#ifndef PGSCRIBE_REWIND_H
#define PGSCRIBE_REWIND_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/** The database's identity: a restore to a point in time or a promotion
 *  starts a new timeline; another cluster has another system identifier. */
typedef struct {
    char system_identifier[24];
    int timeline;
} pgs_rewind_identity_t;

/** One partition's comparison. committed and recorded are -1 when unknown
 *  (no committed offset, no record); target is -1 when nothing is done. */
typedef struct {
    char topic[256];
    int32_t partition;
    int64_t committed; /* the group's next offset to read */
    int64_t recorded;  /* the highest offset the database records */
    int64_t target;    /* the offset to rewind to, or -1 */
} pgs_rewind_row_t;

/** @brief Parses "SYSID/TIMELINE". @returns 0, or -1 when malformed. */
int pgs_rewind_identity_parse(const char *text, pgs_rewind_identity_t *out);
/** @returns 1 when @p a and @p b name the same cluster on the same timeline. */
int pgs_rewind_identity_same(const pgs_rewind_identity_t *a, const pgs_rewind_identity_t *b);
/** @brief "SYSID/TIMELINE" of @p id into @p out. */
void pgs_rewind_identity_format(const pgs_rewind_identity_t *id, char *out, size_t out_size);
/**
 * @brief Records that every offset of @p topic / @p partition below @p next
 *        is final in this database (pgscribe.resume_checkpoint), if it is
 *        still the database of @p identity ("SYSID/TIMELINE").
 * @returns 1 recorded, 0 refused (another database now), -1 on an error.
 */
int pgs_rewind_checkpoint(PGconn *pg, const char *topic, int32_t partition, int64_t next,
                          const char *identity);
/** @brief Reads the identity (pgscribe.db_identity()). @returns 0 or -1. */
int pgs_rewind_identity(PGconn *pg, pgs_rewind_identity_t *out);
/** @brief The highest offset of @p topic / @p partition the database
 *         records (pgscribe.recorded_position), -1 in @p out when none.
 *         @returns 0, or -1 on a database error. */
int pgs_rewind_recorded(PGconn *pg, const char *topic, int32_t partition, int64_t *out);
/**
 * @brief The rewind decision: @returns recorded + 1 when it is below the
 *        committed offset (the database ends before what Kafka believes is
 *        done), else -1 (keep the committed offset). Nothing recorded, or
 *        nothing committed, is never a rewind.
 */
int64_t pgs_rewind_target(int64_t committed, int64_t recorded);
/**
 * @brief Fills @p rows (one per element of @p parts, @p n of them) with the
 *        group's committed offsets (rd_kafka_committed, within @p timeout_ms)
 *        and the database's record, and the decision.
 *        @returns 0, or -1 with @p errstr set (nothing may be rewound then).
 */
int pgs_rewind_plan(rd_kafka_t *rk, PGconn *pg, const rd_kafka_topic_partition_list_t *parts,
                    int timeout_ms, pgs_rewind_row_t *rows, char *errstr, size_t errstr_size);
/** @brief Opens a blocking connection for the comparison, NULL with
 *         @p errstr set when it fails. */
PGconn *pgs_rewind_connect(const char *conninfo, char *errstr, size_t errstr_size);

#endif
