/* Fair dispatch settings and the bound on throttled clinics' buffering. */
#include "run/fair.h"
#include "common/clock.h"

#include <string.h>

int pgs_fair_configure(pgs_ratelimit_t *rl, pgs_lanes_t *lanes, const pgs_config_t *cfg,
                       char *errstr, size_t errstr_size)
{
    if (pgs_ratelimit_configure(rl, pgs_config_double(cfg, "limits.clinic_rate"),
                                pgs_config_double(cfg, "limits.clinic_burst"),
                                pgs_config_str(cfg, "limits.overrides"), pgs_clock_now_us(), errstr,
                                errstr_size) != 0)
        return -1;
    pgs_lanes_set_limits(lanes, pgs_ratelimit_any(rl) ? rl : NULL,
                         (size_t)pgs_config_int(cfg, "limits.clinic_quantum"));
    return 0;
}

int pgs_fair_over_limit(const pgs_ratelimit_t *rl, const pgs_lanes_t *lanes, const char *clinic)
{
    double rate, burst;
    if (!pgs_ratelimit_any(rl) || !clinic ||
        !pgs_ratelimit_limit_of(rl, clinic, strlen(clinic), &rate, &burst))
        return 0;
    return (double)pgs_lanes_group_queued(lanes, clinic) >= burst + rate * PGS_FAIR_BACKLOG_S;
}

int pgs_fair_partition_throttled(size_t over, size_t outstanding, size_t window, int paused)
{
    size_t floor = window / 10 < 10 ? 10 : window / 10;
    if (paused)
        return over * 4 >= outstanding && over * 2 >= floor;
    return over * 2 >= outstanding && over >= floor;
}
