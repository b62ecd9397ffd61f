/* Adaptive concurrency limit: hill climbing on the commit rate of saturated
 * windows (see concurrency.h). */
#include "policy/concurrency.h"

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void pgs_concurrency_init(pgs_concurrency_t *c, int adaptive, int initial, int max,
                          int64_t window_us, int64_t now_us)
{
    *c = (pgs_concurrency_t){0};
    c->max = max < 1 ? 1 : max;
    c->min = adaptive ? (c->max < 2 ? c->max : 2) : c->max;
    c->limit = clamp(initial, c->min, c->max);
    /* from the floor: slow start, doubling while it pays; from higher up:
     * fewer first */
    c->slow_start = adaptive && c->limit == c->min && c->min < c->max;
    c->dir = c->slow_start ? 1 : -1;
    c->window_us = window_us > 0 ? window_us : 1;
    c->window_start_us = now_us;
}

void pgs_concurrency_done(pgs_concurrency_t *c, int commands, int64_t took_us)
{
    if (commands > 0)
        c->done += (uint64_t)commands;
    if (took_us > 0)
        c->latency_us += (uint64_t)took_us;
    c->txns++;
}

void pgs_concurrency_polled(pgs_concurrency_t *c, int held)
{
    c->ready_polls++;
    if (held)
        c->held_polls++;
}

static int move_to(pgs_concurrency_t *c, int next)
{
    c->limit = next;
    c->changes++;
    return 1;
}

int pgs_concurrency_tick(pgs_concurrency_t *c, int64_t now_us)
{
    int64_t elapsed = now_us - c->window_start_us;
    if (elapsed < c->window_us ||
        (c->txns < PGS_CONCURRENCY_MIN_TXNS && elapsed < 10 * c->window_us))
        return 0;
    /* saturated: the limit held work back in at least half the passes that
     * had work; only then does the rate say what the database can do */
    int saturated = c->held_polls > 0 && c->held_polls * 2 >= c->ready_polls;
    double rate = (double)c->done * 1e6 / (double)elapsed;
    /* the score: the rate squared over the mean commit latency (a power in
     * Kleinrock's sense, weighted towards the rate). Past the point where
     * the database is busy, more in flight only queue: the rate stays, the
     * latency grows with the limit, and the score falls with it. */
    double latency = c->txns > 0 ? (double)c->latency_us / (double)c->txns : 0;
    double score = latency > 0 ? rate * rate / latency : 0;
    c->window_start_us = now_us;
    c->done = c->txns = c->latency_us = 0;
    c->ready_polls = c->held_polls = 0;
    if (!saturated || c->min == c->max || score <= 0) {
        /* a rate measured at another load says nothing about the next move */
        c->last_rate = c->last_score = 0;
        return 0;
    }
    c->last_rate = rate;
    if (c->slow_start && !c->warmed) {
        /* the first window at the floor holds the start (connections,
         * prepares, cold caches): its score says nothing of the limit */
        c->warmed = 1;
        return 0;
    }
    if (c->slow_start) {
        if (c->last_score > 0 && score < c->last_score * (1 + PGS_CONCURRENCY_SLOW_START_GAIN)) {
            /* the doubling did not pay as a doubling should: climb by
             * quarters from here, first down ("no difference") */
            c->slow_start = 0;
            c->dir = -1;
        } else {
            c->last_score = score;
            int next = clamp(c->limit * 2, c->min, c->max);
            if (next == c->limit) {
                c->slow_start = 0;
                return 0;
            }
            return move_to(c, next);
        }
    } else if (c->last_score > 0) {
        if (score > c->last_score * (1 + PGS_CONCURRENCY_MARGIN))
            ; /* the last move helped: go on */
        else if (score < c->last_score * (1 - PGS_CONCURRENCY_MARGIN))
            c->dir = -c->dir;
        else
            c->dir = -1;
    }
    c->last_score = score;
    int step = c->limit / 4 > 1 ? c->limit / 4 : 1;
    int next = clamp(c->limit + c->dir * step, c->min, c->max);
    if (next == c->limit) {
        /* at a bound: probe the other way now, or the "no difference, step
         * down" rule would hold the limit at the floor for good */
        c->dir = -c->dir;
        next = clamp(c->limit + c->dir * step, c->min, c->max);
        if (next == c->limit)
            return 0;
    }
    return move_to(c, next);
}
