/* Per-clinic token buckets with overrides and throttled-time accounting. */
#include "policy/ratelimit.h"
#include "common/hash.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_OVERRIDES_MAX 256

void pgs_bucket_init(pgs_bucket_t *b, double rate, double burst, int64_t now_us)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? burst : 1;
    b->tokens = b->burst;
    b->last_us = now_us;
}

void pgs_bucket_refill(pgs_bucket_t *b, int64_t now_us)
{
    if (now_us <= b->last_us)
        return;
    b->tokens += b->rate * (double)(now_us - b->last_us) / 1e6;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_us = now_us;
}

size_t pgs_bucket_take(pgs_bucket_t *b, size_t want, int64_t now_us)
{
    if (b->rate <= 0)
        return want;
    pgs_bucket_refill(b, now_us);
    size_t whole = b->tokens >= 1 ? (size_t)b->tokens : 0;
    size_t n = want < whole ? want : whole;
    b->tokens -= (double)n;
    return n;
}

int64_t pgs_bucket_wait_us(const pgs_bucket_t *b, int64_t now_us)
{
    if (b->rate <= 0)
        return 0;
    double tokens = b->tokens;
    if (now_us > b->last_us)
        tokens += b->rate * (double)(now_us - b->last_us) / 1e6;
    if (tokens >= 1)
        return 0;
    return (int64_t)((1 - tokens) * 1e6 / b->rate) + 1;
}

/* ---- overrides ------------------------------------------------------- */

static const char *skip_blanks(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

static int parse_num(const char **pp, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(*pp, &end);
    if (end == *pp || errno || !(v >= 0) || v > 1e9)
        return -1;
    *out = v;
    *pp = skip_blanks(end);
    return 0;
}

int pgs_ratelimit_parse_overrides(const char *s, pgs_ratelimit_override_t *out, int max,
                                  char *errstr, size_t errstr_size)
{
    int n = 0;
    const char *p = skip_blanks(s ? s : "");
    while (*p) {
        const char *name = p;
        while (*p && *p != ':' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t len = (size_t)(p - name);
        p = skip_blanks(p);
        if (len == 0 || len >= sizeof(out->clinic) || *p != ':') {
            snprintf(errstr, errstr_size, "override %d: expected clinic:rate[:burst]", n + 1);
            return -1;
        }
        p = skip_blanks(p + 1);
        double rate = 0, burst = 0;
        if (parse_num(&p, &rate) != 0 || rate <= 0) {
            snprintf(errstr, errstr_size, "override %d: rate must be a number above 0", n + 1);
            return -1;
        }
        if (*p == ':') {
            p = skip_blanks(p + 1);
            if (parse_num(&p, &burst) != 0 || burst < 1) {
                snprintf(errstr, errstr_size, "override %d: burst must be a number of at least 1",
                         n + 1);
                return -1;
            }
        } else {
            burst = rate < 1 ? 1 : rate;
        }
        if (*p && *p != ',') {
            snprintf(errstr, errstr_size, "override %d: unexpected text after it", n + 1);
            return -1;
        }
        if (n < max) {
            memcpy(out[n].clinic, name, len);
            out[n].clinic[len] = '\0';
            out[n].rate = rate;
            out[n].burst = burst;
        }
        n++;
        if (*p == ',')
            p = skip_blanks(p + 1);
    }
    return n;
}

/* ---- the per-clinic table -------------------------------------------- */

typedef struct {
    char *clinic; /* NULL: free slot */
    size_t len;
    uint64_t hash;
    pgs_bucket_t bucket;
    int throttled;
    int64_t throttled_since_us;
    int64_t throttled_us; /* finished spells */
} rl_entry_t;

struct pgs_ratelimit_s {
    double rate, burst; /* the default */
    pgs_ratelimit_override_t *ovr;
    int novr;
    rl_entry_t *slots;
    size_t cap, count; /* cap a power of two */
    uint64_t spells;
};

pgs_ratelimit_t *pgs_ratelimit_new(void)
{
    return calloc(1, sizeof(pgs_ratelimit_t));
}

void pgs_ratelimit_free(pgs_ratelimit_t *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->cap; i++)
        free(rl->slots[i].clinic);
    free(rl->slots);
    free(rl->ovr);
    free(rl);
}

static const pgs_ratelimit_override_t *override_of(const pgs_ratelimit_t *rl, const char *clinic,
                                                   size_t len)
{
    for (int i = 0; i < rl->novr; i++) {
        if (strlen(rl->ovr[i].clinic) == len && memcmp(rl->ovr[i].clinic, clinic, len) == 0)
            return &rl->ovr[i];
    }
    return NULL;
}

int pgs_ratelimit_limit_of(const pgs_ratelimit_t *rl, const char *clinic, size_t len, double *rate,
                           double *burst)
{
    const pgs_ratelimit_override_t *o = override_of(rl, clinic, len);
    double r = o ? o->rate : rl->rate;
    double b = o ? o->burst : (rl->burst >= 1 ? rl->burst : rl->rate);
    if (rate)
        *rate = r;
    if (burst)
        *burst = b < 1 ? 1 : b;
    return r > 0;
}

int pgs_ratelimit_any(const pgs_ratelimit_t *rl)
{
    return rl && (rl->rate > 0 || rl->novr > 0);
}

static rl_entry_t *slot_find(const pgs_ratelimit_t *rl, const char *clinic, size_t len,
                             uint64_t hash)
{
    if (rl->cap == 0)
        return NULL;
    for (size_t i = hash & (rl->cap - 1);; i = (i + 1) & (rl->cap - 1)) {
        rl_entry_t *e = &rl->slots[i];
        if (!e->clinic)
            return e;
        if (e->hash == hash && e->len == len && memcmp(e->clinic, clinic, len) == 0)
            return e;
    }
}

static void table_grow(pgs_ratelimit_t *rl)
{
    size_t cap = rl->cap ? rl->cap * 2 : 16;
    rl_entry_t *old = rl->slots;
    size_t old_cap = rl->cap;
    rl->slots = calloc(cap, sizeof(*rl->slots));
    if (!rl->slots)
        abort();
    rl->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].clinic)
            *slot_find(rl, old[i].clinic, old[i].len, old[i].hash) = old[i];
    }
    free(old);
}

static uint64_t clinic_hash(const char *clinic, size_t len)
{
    uint64_t h = pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, clinic, len);
    return h ^ (h >> 32);
}

/* The clinic's entry, made on first use; NULL for an unlimited clinic never
 * throttled (no entry is kept for it). */
static rl_entry_t *entry_get(pgs_ratelimit_t *rl, const char *clinic, size_t len, int64_t now_us)
{
    uint64_t hash = clinic_hash(clinic, len);
    rl_entry_t *e = slot_find(rl, clinic, len, hash);
    if (e && e->clinic)
        return e;
    double rate, burst;
    if (!pgs_ratelimit_limit_of(rl, clinic, len, &rate, &burst))
        return NULL;
    if ((rl->count + 1) * 4 > rl->cap * 3) {
        table_grow(rl);
        e = slot_find(rl, clinic, len, hash);
    }
    e->clinic = malloc(len + 1);
    if (!e->clinic)
        abort();
    memcpy(e->clinic, clinic, len);
    e->clinic[len] = '\0';
    e->len = len;
    e->hash = hash;
    pgs_bucket_init(&e->bucket, rate, burst, now_us);
    rl->count++;
    return e;
}

int pgs_ratelimit_configure(pgs_ratelimit_t *rl, double rate, double burst, const char *overrides,
                            int64_t now_us, char *errstr, size_t errstr_size)
{
    pgs_ratelimit_override_t *ovr = calloc(RL_OVERRIDES_MAX, sizeof(*ovr));
    if (!ovr)
        abort();
    int n = pgs_ratelimit_parse_overrides(overrides, ovr, RL_OVERRIDES_MAX, errstr, errstr_size);
    if (n > RL_OVERRIDES_MAX) {
        snprintf(errstr, errstr_size, "%d overrides, at most %d", n, RL_OVERRIDES_MAX);
        n = -1;
    }
    if (n < 0) {
        free(ovr);
        return -1;
    }
    free(rl->ovr);
    rl->ovr = ovr;
    rl->novr = n;
    rl->rate = rate > 0 ? rate : 0;
    rl->burst = burst > 0 ? burst : 0;
    for (size_t i = 0; i < rl->cap; i++) {
        rl_entry_t *e = &rl->slots[i];
        if (!e->clinic)
            continue;
        double r, b;
        pgs_bucket_refill(&e->bucket, now_us);
        if (!pgs_ratelimit_limit_of(rl, e->clinic, e->len, &r, &b)) {
            e->bucket.rate = 0; /* unlimited now; the entry keeps its throttled time */
            continue;
        }
        e->bucket.rate = r;
        e->bucket.burst = b;
        if (e->bucket.tokens > b)
            e->bucket.tokens = b;
    }
    return 0;
}

static void spell_end(rl_entry_t *e, int64_t now_us)
{
    if (!e->throttled)
        return;
    e->throttled = 0;
    e->throttled_us += now_us - e->throttled_since_us;
}

size_t pgs_ratelimit_take(pgs_ratelimit_t *rl, const char *clinic, size_t len, size_t want,
                          int64_t now_us)
{
    if (!pgs_ratelimit_any(rl) || want == 0)
        return want;
    rl_entry_t *e = entry_get(rl, clinic, len, now_us);
    if (!e)
        return want;
    size_t n = pgs_bucket_take(&e->bucket, want, now_us);
    if (n == want) {
        spell_end(e, now_us);
    } else if (!e->throttled) {
        e->throttled = 1;
        e->throttled_since_us = now_us;
        rl->spells++;
    }
    return n;
}

void pgs_ratelimit_idle(pgs_ratelimit_t *rl, const char *clinic, size_t len, int64_t now_us)
{
    if (!rl || rl->cap == 0)
        return;
    rl_entry_t *e = slot_find(rl, clinic, len, clinic_hash(clinic, len));
    if (e && e->clinic)
        spell_end(e, now_us);
}

int64_t pgs_ratelimit_next_us(const pgs_ratelimit_t *rl, int64_t now_us)
{
    int64_t best = -1;
    for (size_t i = 0; rl && i < rl->cap; i++) {
        const rl_entry_t *e = &rl->slots[i];
        if (!e->clinic || !e->throttled)
            continue;
        int64_t w = pgs_bucket_wait_us(&e->bucket, now_us);
        if (best < 0 || w < best)
            best = w;
    }
    return best;
}

static double entry_throttled_s(const rl_entry_t *e, int64_t now_us)
{
    int64_t us = e->throttled_us;
    if (e->throttled && now_us > e->throttled_since_us)
        us += now_us - e->throttled_since_us;
    return (double)us / 1e6;
}

double pgs_ratelimit_throttled_s(const pgs_ratelimit_t *rl, const char *clinic, int64_t now_us)
{
    if (!rl || rl->cap == 0)
        return 0;
    size_t len = strlen(clinic);
    const rl_entry_t *e = slot_find(rl, clinic, len, clinic_hash(clinic, len));
    return e && e->clinic ? entry_throttled_s(e, now_us) : 0;
}

size_t pgs_ratelimit_each_throttled(const pgs_ratelimit_t *rl, int64_t now_us,
                                    void (*fn)(const char *clinic, double seconds, void *opaque),
                                    void *opaque)
{
    size_t n = 0;
    for (size_t i = 0; rl && i < rl->cap; i++) {
        const rl_entry_t *e = &rl->slots[i];
        if (!e->clinic || (!e->throttled && e->throttled_us == 0))
            continue;
        fn(e->clinic, entry_throttled_s(e, now_us), opaque);
        n++;
    }
    return n;
}

uint64_t pgs_ratelimit_spells(const pgs_ratelimit_t *rl)
{
    return rl ? rl->spells : 0;
}
