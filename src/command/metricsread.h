/* Reading WorkerMetrics records back from the metrics topic, shared by
 * `pgscribe metrics` and `pgscribe top`: an assign-only consumer over every
 * partition (no group state, nothing committed), started at the beginning,
 * at the end, or a number of records before the end, and decoding each
 * record to its JSON text. */
#ifndef PGSCRIBE_METRICSREAD_H
#define PGSCRIBE_METRICSREAD_H

#include <jansson.h>
#include <stddef.h>

#include "common/config.h"

typedef enum {
    PGS_METRICSREAD_BEGINNING, /* every record kept */
    PGS_METRICSREAD_END,       /* only records written from now on */
    PGS_METRICSREAD_TAIL,      /* the last records of each partition, then on */
} pgs_metricsread_from_t;

/** Records read before the end of each partition when starting at TAIL:
 *  a worker's records all go to one partition (keyed by worker id), so its
 *  newest is among them unless that many records of others came after it. */
#define PGS_METRICSREAD_TAIL_RECORDS 500

typedef struct pgs_metricsread_s pgs_metricsread_t;

/** What pgs_metricsread_next found. */
typedef enum {
    PGS_METRICSREAD_NONE = 0, /* nothing within the time-out */
    PGS_METRICSREAD_RECORD,   /* a record: its JSON text */
    PGS_METRICSREAD_EOF,      /* a partition reached its end (once per partition and catch-up) */
} pgs_metricsread_ev_t;

/**
 * @brief Opens a reader of @p cfg's topic.metrics (bootstrap @p brokers, or
 *        the config's) from @p from; @p who names the subcommand in errors.
 * @returns the reader, or NULL with the reason in @p errstr.
 */
pgs_metricsread_t *pgs_metricsread_open(const pgs_config_t *cfg, const char *brokers,
                                        pgs_metricsread_from_t from, char *errstr,
                                        size_t errstr_size);
void pgs_metricsread_close(pgs_metricsread_t *r);
/** @returns the partitions of the metrics topic. */
int pgs_metricsread_partitions(const pgs_metricsread_t *r);
/**
 * @brief Waits up to @p timeout_ms for the next record or end of partition.
 *        A record that does not decode is reported on stderr and skipped.
 * @returns what came; for a record, its JSON text (malloc'ed) in @p *json.
 */
pgs_metricsread_ev_t pgs_metricsread_next(pgs_metricsread_t *r, int timeout_ms, char **json);
/**
 * @brief Keeps in @p newest (an object keyed by worker id) the record @p rec
 *        of the latest interval_end per worker; takes @p rec's reference.
 * @returns 1 when @p rec was kept.
 */
int pgs_metricsread_keep_newest(json_t *newest, json_t *rec);

#endif
