/* Structured logs on stderr: one line per event, logfmt keys, never PHI. */
#ifndef PGSCRIBE_LOG_H
#define PGSCRIBE_LOG_H

#include <stddef.h>

typedef enum { PGS_LOG_DEBUG = 0, PGS_LOG_INFO, PGS_LOG_WARN, PGS_LOG_ERROR } pgs_log_level_t;

void pgs_log_set_level(pgs_log_level_t level);
/** @returns 0 and sets *level for "debug", "info", "warn" or "error". */
int pgs_log_level_parse(const char *name, pgs_log_level_t *level);
/** @brief Sets the worker id stamped on every line. */
void pgs_log_set_worker(const char *worker_id);

/** @brief Writes `ts=... level=... worker=... module=... msg="..."`.
 *  @p fmt produces the message text; callers never pass PHI values. */
void pgs_log(pgs_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * @brief The @p i-th most recent warn or error line (0 = newest) of the last
 *        16, as written, into @p buf.
 * @returns 0, or -1 when there is no such line.
 */
int pgs_log_recent(size_t i, char *buf, size_t size);

#define pgs_debug(mod, ...) pgs_log(PGS_LOG_DEBUG, mod, __VA_ARGS__)
#define pgs_info(mod, ...)  pgs_log(PGS_LOG_INFO, mod, __VA_ARGS__)
#define pgs_warn(mod, ...)  pgs_log(PGS_LOG_WARN, mod, __VA_ARGS__)
#define pgs_error(mod, ...) pgs_log(PGS_LOG_ERROR, mod, __VA_ARGS__)

#endif
