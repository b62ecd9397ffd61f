/* Report: the interval counters every stage adds to, and the WorkerMetrics
 * record made from them each interval. */
#ifndef PGSCRIBE_METRICS_H
#define PGSCRIBE_METRICS_H

#include <stdint.h>

#include "policy/hist.h"

typedef struct pgs_worker_s pgs_worker_t;

/** Per-clinic counters for the current metrics interval. */
typedef struct pgs_clinic_counter_s {
    char *clinic_id;
    int64_t applied;
    int64_t db_time_us;
    int64_t tenant_violations; /* dead letters of class tenant naming this clinic */
    struct pgs_clinic_counter_s *next;
} pgs_clinic_counter_t;

/** Counters of the current metrics interval (reset by each report). */
typedef struct {
    int64_t consumed, applied, duplicates, retried, dead_lettered, transactions;
    int64_t tenant_violations; /* both streams' dead letters of class tenant */
    pgs_hist_t commit_latency;
    pgs_clinic_counter_t *clinics;
    /* totals since start, for the exit summary */
    int64_t total_consumed, total_applied, total_duplicates, total_dead_lettered;
    pgs_hist_t total_commit_latency;
} pgs_counters_t;

/** @brief Produces the interval's record when it is due (or @p force). */
void pgs_metrics_maybe_report(pgs_worker_t *w, int force);
void pgs_metrics_counters_reset(pgs_counters_t *c);

#endif
