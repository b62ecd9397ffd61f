/* Structured logs on stderr: one line per event, logfmt (default) or JSON,
 * never PHI. Every line pgscribe's worker writes to stderr comes through here. */
#ifndef PGSCRIBE_LOG_H
#define PGSCRIBE_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "common/sbuf.h"

typedef enum { PGS_LOG_DEBUG = 0, PGS_LOG_INFO, PGS_LOG_WARN, PGS_LOG_ERROR } pgs_log_level_t;
typedef enum { PGS_LOG_LOGFMT = 0, PGS_LOG_JSON } pgs_log_format_t;

void pgs_log_set_level(pgs_log_level_t level);
/** @returns 0 and sets *level for "debug", "info", "warn" or "error". */
int pgs_log_level_parse(const char *name, pgs_log_level_t *level);
/** @brief Sets the line format (`log.format`); takes effect from the next line. */
void pgs_log_set_format(pgs_log_format_t format);
/** @returns 0 and sets *format for "logfmt" or "json". */
int pgs_log_format_parse(const char *name, pgs_log_format_t *format);
/** @brief Sets the worker id stamped on every line. */
void pgs_log_set_worker(const char *worker_id);

/** @brief Writes `ts=... level=... worker=... module=... msg="..."` (or the
 *         same keys as one JSON object). @p fmt produces the message text;
 *         callers never pass PHI values.
 *  @locality any thread */
void pgs_log(pgs_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief As pgs_log(), with fields after msg: @p kv is key, value, ...,
 *         NULL (may be NULL). Keys are plain tokens; values are escaped. */
void pgs_log_kv(pgs_log_level_t level, const char *module, const char *const *kv, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
void pgs_log_v(pgs_log_level_t level, const char *module, const char *const *kv, const char *fmt,
               va_list ap) __attribute__((format(printf, 4, 0)));

/** @brief Appends one formatted line (with its newline) to @p sb: the writer's
 *         pure part, for tests. */
void pgs_log_fmt_line(pgs_sbuf_t *sb, pgs_log_format_t fmt, const char *ts, pgs_log_level_t level,
                      const char *worker, const char *module, const char *msg,
                      const char *const *kv);

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
