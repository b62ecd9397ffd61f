/* Latency histogram: log-linear buckets, percentiles within ~3%. Pure code. */
#ifndef PGSCRIBE_HIST_H
#define PGSCRIBE_HIST_H

#include <stdint.h>

#define PGS_HIST_BUCKETS 1024

typedef struct {
    uint64_t counts[PGS_HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
    uint64_t sum_us; /* of every recorded value: a Prometheus histogram's _sum */
} pgs_hist_t;

void pgs_hist_reset(pgs_hist_t *h);
void pgs_hist_record(pgs_hist_t *h, uint64_t value_us);
/** @brief Value at percentile @p p (0..100) in microseconds; 0 if empty. */
uint64_t pgs_hist_percentile(const pgs_hist_t *h, double p);
void pgs_hist_merge(pgs_hist_t *dst, const pgs_hist_t *src);
/**
 * @brief How many recorded values are at most @p bound_us, to the
 *        histogram's resolution: a value in the bucket holding @p bound_us
 *        counts as at most it (so up to 1/32 above it may be counted).
 *        Cumulative, as a Prometheus bucket with le = @p bound_us.
 */
uint64_t pgs_hist_count_le(const pgs_hist_t *h, uint64_t bound_us);

#endif
