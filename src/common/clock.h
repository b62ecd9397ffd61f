/* Clock: the time sources every stage uses. */
#ifndef PGSCRIBE_CLOCK_H
#define PGSCRIBE_CLOCK_H

#include <stdint.h>

/** @returns CLOCK_MONOTONIC in microseconds: for deadlines and durations. */
int64_t pgs_clock_now_us(void);
/** @returns CLOCK_REALTIME in milliseconds: for timestamps in records. */
int64_t pgs_clock_now_ms(void);
/** @returns CLOCK_REALTIME in nanoseconds since the Unix epoch: for span times. */
int64_t pgs_clock_wall_ns(void);

#endif
