/* Bounded-rate log lines for recurring causes (an unreachable broker or
 * database): one line per interval, and a count of what was held back. */
#include "policy/lograte.h"

int pgs_lograte_allow(pgs_lograte_t *r, int64_t now_us, int64_t interval_us, int64_t *suppressed)
{
    if (r->logged && now_us - r->last_us < interval_us) {
        r->suppressed++;
        return 0;
    }
    *suppressed = r->suppressed;
    r->suppressed = 0;
    r->last_us = now_us;
    r->logged = 1;
    return 1;
}

void pgs_lograte_reset(pgs_lograte_t *r)
{
    *r = (pgs_lograte_t){0};
}
