/* Durations written the way operators write them: 7y, 30d, 12h, 90m, 45s. */
#ifndef PGSCRIBE_DURATION_H
#define PGSCRIBE_DURATION_H

#include <stdint.h>

/**
 * @brief Parses a whole number followed by one unit: s (seconds), m
 *        (minutes), h (hours), d (days), w (weeks) or y (years of 365 days).
 * @returns 0 with the length in seconds in @p *seconds, or -1 when @p text
 *          is not such a duration or the result exceeds 100 years.
 */
int pgs_duration_parse(const char *text, int64_t *seconds);

#endif
