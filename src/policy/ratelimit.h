/* Per-clinic rate limits, pure code: a token bucket per clinic (commands per
 * second and a burst), a default for every clinic with overrides for some,
 * and the time each clinic spent throttled (ready commands held back for
 * want of tokens). */
#ifndef PGSCRIBE_RATELIMIT_H
#define PGSCRIBE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/** A token bucket: @c rate tokens a second up to @c burst. */
typedef struct {
    double rate;  /* tokens per second; 0: unlimited */
    double burst; /* the most tokens held */
    double tokens;
    int64_t last_us; /* of the last refill */
} pgs_bucket_t;

/** @brief A full bucket of @p rate per second and @p burst (at least 1). */
void pgs_bucket_init(pgs_bucket_t *b, double rate, double burst, int64_t now_us);
/** @brief Adds the tokens earned since the last refill, up to the burst. */
void pgs_bucket_refill(pgs_bucket_t *b, int64_t now_us);
/** @brief Takes up to @p want whole tokens (after a refill).
 *  @returns how many were taken; @p want when the bucket is unlimited. */
size_t pgs_bucket_take(pgs_bucket_t *b, size_t want, int64_t now_us);
/** @returns microseconds until the bucket holds one whole token (0: now). */
int64_t pgs_bucket_wait_us(const pgs_bucket_t *b, int64_t now_us);

/** One override: a clinic's own rate and burst. */
typedef struct {
    char clinic[64];
    double rate, burst;
} pgs_ratelimit_override_t;

/**
 * @brief Parses "clinic:rate:burst[,clinic:rate:burst...]" (blanks around
 *        items allowed; burst may be left out: then it is the rate, at least 1).
 * @returns the number of overrides (at most @p max written), or -1 with
 *          @p errstr filled. An empty string has none.
 */
int pgs_ratelimit_parse_overrides(const char *s, pgs_ratelimit_override_t *out, int max,
                                  char *errstr, size_t errstr_size);

typedef struct pgs_ratelimit_s pgs_ratelimit_t;

pgs_ratelimit_t *pgs_ratelimit_new(void);
void pgs_ratelimit_free(pgs_ratelimit_t *rl);
/**
 * @brief Sets the default limit (@p rate 0: unlimited; @p burst 0: the rate)
 *        and the overrides @p overrides (as parsed above). Clinics already
 *        seen keep their tokens, cut to the new burst.
 * @returns 0, or -1 with @p errstr filled (nothing changed).
 */
int pgs_ratelimit_configure(pgs_ratelimit_t *rl, double rate, double burst, const char *overrides,
                            int64_t now_us, char *errstr, size_t errstr_size);
/** @returns 1 when some clinic has a limit. */
int pgs_ratelimit_any(const pgs_ratelimit_t *rl);
/** @brief The limit of @p clinic (@p len bytes). @returns 0 when unlimited. */
int pgs_ratelimit_limit_of(const pgs_ratelimit_t *rl, const char *clinic, size_t len, double *rate,
                           double *burst);
/**
 * @brief @p clinic has @p want commands ready: takes up to @p want tokens.
 *        Taking fewer than @p want starts (or continues) a throttled spell;
 *        taking all of them ends it.
 * @returns how many commands may go now.
 */
size_t pgs_ratelimit_take(pgs_ratelimit_t *rl, const char *clinic, size_t len, size_t want,
                          int64_t now_us);
/** @brief @p clinic has nothing ready any more: a throttled spell ends. */
void pgs_ratelimit_idle(pgs_ratelimit_t *rl, const char *clinic, size_t len, int64_t now_us);
/** @returns microseconds until the soonest throttled clinic has a token, or
 *           -1 when none is throttled. */
int64_t pgs_ratelimit_next_us(const pgs_ratelimit_t *rl, int64_t now_us);
/** @returns seconds @p clinic has spent throttled (a spell under way included). */
double pgs_ratelimit_throttled_s(const pgs_ratelimit_t *rl, const char *clinic, int64_t now_us);
/** @brief Calls @p fn for each clinic ever throttled, with its throttled
 *         seconds. @returns how many. */
size_t pgs_ratelimit_each_throttled(const pgs_ratelimit_t *rl, int64_t now_us,
                                    void (*fn)(const char *clinic, double seconds, void *opaque),
                                    void *opaque);
/** @returns throttled spells started, over every clinic. */
uint64_t pgs_ratelimit_spells(const pgs_ratelimit_t *rl);

#endif
