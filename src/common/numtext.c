/* Decimal text of integers (see numtext.h). */
#include "common/numtext.h"

#include <string.h>

/* The digits from the end of a scratch buffer, then moved to the front. */
static size_t put(uint64_t u, int neg, char out[PGS_NUMTEXT_MAX])
{
    char buf[PGS_NUMTEXT_MAX];
    char *e = buf + sizeof(buf), *o = e;
    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--o = '-';
    size_t n = (size_t)(e - o);
    memcpy(out, o, n);
    out[n] = '\0';
    return n;
}

size_t pgs_numtext_i64(int64_t v, char out[PGS_NUMTEXT_MAX])
{
    /* the magnitude in unsigned arithmetic: -INT64_MIN does not fit */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return put(u, v < 0, out);
}

size_t pgs_numtext_u64(uint64_t v, char out[PGS_NUMTEXT_MAX])
{
    return put(v, 0, out);
}
