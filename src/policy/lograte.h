/* Bounded-rate log lines: at most one line per interval for a recurring
 * cause, with how many were suppressed in between. Pure code. */
#ifndef PGSCRIBE_LOGRATE_H
#define PGSCRIBE_LOGRATE_H

#include <stdint.h>

/** One recurring cause's state; zero-initialised means "never logged". */
typedef struct {
    int64_t last_us;    /* when a line was last let through */
    int64_t suppressed; /* occurrences since then that were not */
    int logged;         /* a line was ever let through */
} pgs_lograte_t;

/**
 * @brief Records one occurrence at @p now_us.
 * @returns 1 when a line should be written (the first occurrence, or
 *          @p interval_us after the last line), with the occurrences
 *          suppressed since that line in *suppressed (then reset); 0 when
 *          this one is suppressed.
 */
int pgs_lograte_allow(pgs_lograte_t *r, int64_t now_us, int64_t interval_us, int64_t *suppressed);

/** @brief Forgets the cause (it went away): its next occurrence is logged. */
void pgs_lograte_reset(pgs_lograte_t *r);

#endif
