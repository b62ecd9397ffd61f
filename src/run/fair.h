/* Fair dispatch of the commands stream: per-clinic rate limits from the
 * limits.* settings, the bound on a throttled clinic's buffered commands,
 * and when a partition holding mostly such commands pauses. */
#ifndef PGSCRIBE_FAIR_H
#define PGSCRIBE_FAIR_H

#include <stddef.h>

#include "common/config.h"
#include "policy/ratelimit.h"
#include "run/lanes.h"

/* A limited clinic may buffer what it applies in this many seconds, plus
 * its burst; commands consumed beyond that are "over its limit". */
#define PGS_FAIR_BACKLOG_S 2

/**
 * @brief Applies limits.clinic_rate, clinic_burst, overrides and
 *        clinic_quantum to @p rl and @p lanes (start and SIGHUP).
 * @returns 0, or -1 with @p errstr filled (a bad limits.overrides; nothing
 *          changed).
 */
int pgs_fair_configure(pgs_ratelimit_t *rl, pgs_lanes_t *lanes, const pgs_config_t *cfg,
                       char *errstr, size_t errstr_size);
/** @returns 1 when a command of @p clinic consumed now is over its limit:
 *           the clinic already queues more than its burst plus
 *           PGS_FAIR_BACKLOG_S seconds of its rate. */
int pgs_fair_over_limit(const pgs_ratelimit_t *rl, const pgs_lanes_t *lanes, const char *clinic);
/**
 * @brief Whether a partition pauses for its over-limit commands: @p over of
 *        its @p outstanding works are over their clinic's limit. It pauses
 *        when they are at least half of them and a tenth of @p window (at
 *        least 10); @p paused, it resumes when they fall under a quarter or
 *        a twentieth of @p window.
 */
int pgs_fair_partition_throttled(size_t over, size_t outstanding, size_t window, int paused);

#endif
