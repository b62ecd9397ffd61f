/* Adaptive concurrency: how many transactions a pool keeps in flight, found
 * by hill climbing on committed commands per second and commit latency.
 * Pure code. */
#ifndef PGSCRIBE_CONCURRENCY_H
#define PGSCRIBE_CONCURRENCY_H

#include <stdint.h>

/**
 * A database on few cores commits the most with few concurrent transactions
 * (on 2 cores: 2 in flight commit as much as 6, at a third of the commit
 * latency, and 50 about half), one far away with many. The limiter judges
 * windows in which the limit held work back (saturated windows) by a score:
 * the commit rate squared over the mean commit latency (a power in
 * Kleinrock's sense, weighted towards the rate). Once the database
 * is busy, more in flight only queue: the rate stays and the latency grows
 * with the limit, so the score falls; while more in flight still raise the
 * rate (a database far away) the latency stays and the score grows.
 * With the latency growing as the limit (Little's law, the database busy),
 * a doubling of the limit is worth it from 26% more rate (the cube root of
 * 2); a database far away, whose latency is the network's, climbs to the
 * maximum.
 *
 * Starting at the floor, it doubles the limit each saturated window after
 * the first (which holds the start) while a doubling raises the score by a
 * quarter or more (slow start). Then it moves
 * the limit by a quarter (at least 1) per window, keeps the direction while
 * the score grows by more than the noise margin, turns back when it falls,
 * and steps down when the change made no difference: fewer connections for
 * the same score is better. Windows in which the limit held nothing back
 * leave it alone.
 */
typedef struct {
    int limit;         /* transactions allowed in flight now */
    int min, max;      /* bounds of limit */
    int dir;           /* +1 or -1: the next move */
    int slow_start;    /* doubling from the floor until a doubling stops paying */
    int warmed;        /* the first saturated window (the start) is behind */
    double last_rate;  /* commands/s of the previous saturated window; 0 = none */
    double last_score; /* its score: rate squared over mean commit latency */
    int64_t window_us; /* length of a measuring window */
    int64_t window_start_us;
    uint64_t done;        /* commands committed or settled in this window */
    uint64_t txns;        /* transactions that settled them */
    uint64_t latency_us;  /* their commit latencies, summed */
    uint64_t ready_polls; /* dispatch passes that found work ready */
    uint64_t held_polls;  /* ... and left some behind because of the limit */
    uint64_t changes;     /* times limit moved, for logs and tests */
} pgs_concurrency_t;

/** Noise margin: a score change smaller than this share is no change. */
#define PGS_CONCURRENCY_MARGIN 0.04
/** Slow start: a doubling of the limit must raise the score by this share to
 *  be followed by another; the first that does not ends it. */
#define PGS_CONCURRENCY_SLOW_START_GAIN 0.25
/** A window also waits for this many transactions (up to 10 window lengths):
 *  with long transactions, a rate over a handful of them is mostly noise. */
#define PGS_CONCURRENCY_MIN_TXNS 30

/**
 * @brief Starts at @p initial (clamped to [min(2, max), max]): at the floor
 *        with a slow start, higher up trying fewer first. With @p adaptive 0
 *        the limit stays at @p max.
 */
void pgs_concurrency_init(pgs_concurrency_t *c, int adaptive, int initial, int max,
                          int64_t window_us, int64_t now_us);
/** @brief One transaction settled @p commands (committed or duplicates)
 *         @p took_us after it started. */
void pgs_concurrency_done(pgs_concurrency_t *c, int commands, int64_t took_us);
/** @brief A dispatch pass found work ready; @p held says the limit kept some back. */
void pgs_concurrency_polled(pgs_concurrency_t *c, int held);
/**
 * @brief Closes the window when it is due and moves the limit.
 * @returns 1 when the limit changed.
 */
int pgs_concurrency_tick(pgs_concurrency_t *c, int64_t now_us);

#endif
