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
    int64_t rows_written;  /* target-table rows its applied commands wrote */
    int64_t bytes_written; /* value bytes (key and data) of its applied commands */
    int64_t db_time_us;
    int64_t tenant_violations; /* dead letters of class tenant naming this clinic */
    struct pgs_clinic_counter_s *next;
} pgs_clinic_counter_t;

/** Counts since start of one clinic (or of the clinics past the cap). */
typedef struct pgs_clinic_total_s {
    char *clinic_id;
    int64_t applied, rows_written, bytes_written, db_time_us, tenant_violations;
    struct pgs_clinic_total_s *next;
} pgs_clinic_total_t;

/** Counts since start: each report folds its interval in. A reader adds the
 *  current interval's counts to these to be exact at any moment. */
typedef struct {
    int64_t consumed, applied, duplicates, retried, transactions, tenant_violations;
    int64_t dead_letters_by_class[2][9]; /* [pgs_stream_kind_t][pgs_eclass_t] */
    int64_t audit_stored, audit_duplicates;
    pgs_clinic_total_t *clinics; /* newest first; at most metrics.per_clinic_max */
    size_t nclinics;
    pgs_clinic_total_t other; /* the clinics past the cap, summed */
} pgs_totals_t;

/** Counters of the current metrics interval (reset by each report). */
typedef struct {
    int64_t consumed, applied, duplicates, retried, dead_lettered, transactions;
    int64_t tenant_violations;           /* both streams' dead letters of class tenant */
    int64_t dead_letters_by_class[2][9]; /* [pgs_stream_kind_t][pgs_eclass_t] */
    pgs_hist_t commit_latency;
    pgs_clinic_counter_t *clinics;
    /* totals since start, for the exit summary */
    int64_t total_consumed, total_applied, total_duplicates, total_dead_lettered;
    pgs_hist_t total_commit_latency;
    pgs_totals_t totals; /* everything above, since start, but the interval's */
} pgs_counters_t;

/** @brief Produces the interval's record when it is due (or @p force). */
void pgs_metrics_maybe_report(pgs_worker_t *w, int force);
void pgs_metrics_counters_reset(pgs_counters_t *c);
/**
 * @brief Adds the interval's counts of @p c (and the audit stream's
 *        @p audit_stored, @p audit_duplicates) to its totals, keeping at most
 *        @p per_clinic_max clinics by name. Called by each report before the
 *        interval is reset.
 */
void pgs_metrics_fold(pgs_counters_t *c, int64_t audit_stored, int64_t audit_duplicates,
                      size_t per_clinic_max);
/**
 * @brief Fills @p view with the totals as the next fold will leave them: a
 *        copy of @p c's totals with the interval's clinic counts added, by
 *        the same cap. A scrape between reports shows each clinic under the
 *        name the fold will keep. Free with pgs_metrics_totals_free().
 * @returns how many of the interval's clinics went to "other".
 */
size_t pgs_metrics_totals_view(const pgs_counters_t *c, size_t per_clinic_max, pgs_totals_t *view);
/** @brief Frees the totals' clinic list (at exit). */
void pgs_metrics_totals_free(pgs_totals_t *t);

#endif
