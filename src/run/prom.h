/* Prometheus /metrics: the worker's counters and gauges in the text format. */
#ifndef PGSCRIBE_PROM_H
#define PGSCRIBE_PROM_H

#include "common/sbuf.h"

typedef struct pgs_worker_s pgs_worker_t;

/**
 * @brief Appends every pgscribe series to @p sb: counters since start (the
 *        same counters the WorkerMetrics record reports per interval, folded
 *        into totals plus the interval under way), the commit latency
 *        histogram, consumer lag per partition, pools, breakers and the
 *        per-clinic series behind metrics.per_clinic_max.
 * @locality main thread
 */
void pgs_prom_render(pgs_worker_t *w, pgs_sbuf_t *sb);

#endif
