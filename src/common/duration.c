/* Parsing of operator-written durations (see duration.h). */
#include "common/duration.h"

#include <ctype.h>

#define DURATION_MAX_S (100LL * 365 * 86400)

int pgs_duration_parse(const char *text, int64_t *seconds)
{
    if (!text || !isdigit((unsigned char)*text))
        return -1;
    int64_t n = 0;
    const char *p = text;
    for (; isdigit((unsigned char)*p); p++) {
        n = n * 10 + (*p - '0');
        if (n > DURATION_MAX_S)
            return -1;
    }
    int64_t unit;
    switch (*p) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    case 'y':
        unit = 365 * 86400;
        break;
    default:
        return -1;
    }
    if (p[1] != '\0' || n > DURATION_MAX_S / unit)
        return -1;
    *seconds = n * unit;
    return 0;
}
