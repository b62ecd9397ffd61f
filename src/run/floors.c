/* Resume floors: the pgscribe.resume_floors setting of a transaction. */
#include "run/floors.h"

#include <inttypes.h>
#include <stdio.h>

int pgs_floors_format(const char *identity, const int32_t *parts, const int64_t *floors, int n,
                      char *out, size_t out_size)
{
    if (out_size == 0)
        return -1;
    out[0] = '\0';
    if (!identity || !identity[0])
        return -1;
    int len = snprintf(out, out_size, "%s,", identity);
    if (len < 0 || (size_t)len >= out_size)
        goto too_long;
    for (int i = 0; i < n; i++) {
        if (floors[i] < 0)
            continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = parts[j] == parts[i] && floors[j] >= 0;
        if (seen)
            continue;
        int k = snprintf(out + len, out_size - (size_t)len, "%" PRId32 ":%" PRId64 ",", parts[i],
                         floors[i]);
        if (k < 0 || (size_t)k >= out_size - (size_t)len)
            goto too_long;
        len += k;
    }
    return 0;
too_long:
    out[0] = '\0';
    return -1;
}
