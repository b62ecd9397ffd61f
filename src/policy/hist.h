/* Latency histogram: log-linear buckets, percentiles within ~3%. Pure code. */
#ifndef PGSCRIBE_HIST_H
#define PGSCRIBE_HIST_H

#include <stdint.h>

#define PGS_HIST_BUCKETS 1024

typedef struct {
    uint64_t counts[PGS_HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
} pgs_hist_t;

void pgs_hist_reset(pgs_hist_t *h);
void pgs_hist_record(pgs_hist_t *h, uint64_t value_us);
/** @brief Value at percentile @p p (0..100) in microseconds; 0 if empty. */
uint64_t pgs_hist_percentile(const pgs_hist_t *h, double p);
void pgs_hist_merge(pgs_hist_t *dst, const pgs_hist_t *src);

#endif
