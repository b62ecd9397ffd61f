/* Prometheus text exposition format (version 0.0.4): families and samples. */
#ifndef PGSCRIBE_PROMTEXT_H
#define PGSCRIBE_PROMTEXT_H

#include "common/sbuf.h"

/** The Content-Type of a /metrics answer in this format. */
#define PGS_PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** @brief Appends the `# HELP` and `# TYPE` lines of family @p name
 *         (@p type: counter, gauge, histogram). */
void pgs_promtext_family(pgs_sbuf_t *sb, const char *name, const char *type, const char *help);

/**
 * @brief Appends one sample line: @p name, then @p nlabels label pairs from
 *        @p labels (name, value, name, value, …; values escaped as the format
 *        asks: backslash, double quote, newline), then @p value (integral
 *        values without a fraction; infinities as +Inf/-Inf).
 */
void pgs_promtext_sample(pgs_sbuf_t *sb, const char *name, const char *const *labels, int nlabels,
                         double value);

#endif
