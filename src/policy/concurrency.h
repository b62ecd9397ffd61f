/* Adaptive concurrency: how many transactions a pool keeps in flight, found
 * by hill climbing on committed commands per second. Pure code. */
#ifndef PGSCRIBE_CONCURRENCY_H
#define PGSCRIBE_CONCURRENCY_H

#include <stdint.h>

/**
 * A database on few cores commits the most with few concurrent transactions
 * (on 2 cores: 4 in flight ≈ 19 000 commands/s, 50 ≈ 10 000), one far away
 * with many. The limiter measures the commit rate over windows in which the
 * limit held work back (saturated windows), moves the limit by a quarter
 * (at least 1) per window, keeps the direction while the rate grows by more
 * than the noise margin, turns back when it falls, and steps down when the
 * change made no difference: fewer connections for the same rate is better.
 * Windows in which the limit held nothing back leave it alone.
 */
typedef struct {
    int limit;         /* transactions allowed in flight now */
    int min, max;      /* bounds of limit */
    int dir;           /* +1 or -1: the next move */
    double last_rate;  /* commands/s of the previous saturated window; 0 = none */
    int64_t window_us; /* length of a measuring window */
    int64_t window_start_us;
    uint64_t done;        /* commands committed or settled in this window */
    uint64_t txns;        /* transactions that settled them */
    uint64_t ready_polls; /* dispatch passes that found work ready */
    uint64_t held_polls;  /* ... and left some behind because of the limit */
    uint64_t changes;     /* times limit moved, for logs and tests */
} pgs_concurrency_t;

/** Noise margin: a rate change smaller than this share is no change. */
#define PGS_CONCURRENCY_MARGIN 0.04
/** A window also waits for this many transactions (up to 10 window lengths):
 *  with long transactions, a rate over a handful of them is mostly noise. */
#define PGS_CONCURRENCY_MIN_TXNS 30

/**
 * @brief Starts at @p initial (clamped to [min(2, max), max]) and tries
 *        fewer first. With @p adaptive 0 the limit stays at @p max.
 */
void pgs_concurrency_init(pgs_concurrency_t *c, int adaptive, int initial, int max,
                          int64_t window_us, int64_t now_us);
/** @brief One transaction settled @p commands (committed or duplicates). */
void pgs_concurrency_done(pgs_concurrency_t *c, int commands);
/** @brief A dispatch pass found work ready; @p held says the limit kept some back. */
void pgs_concurrency_polled(pgs_concurrency_t *c, int held);
/**
 * @brief Closes the window when it is due and moves the limit.
 * @returns 1 when the limit changed.
 */
int pgs_concurrency_tick(pgs_concurrency_t *c, int64_t now_us);

#endif
