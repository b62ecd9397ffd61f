/* Structured logging: logfmt lines on stderr. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static pgs_log_level_t log_level = PGS_LOG_INFO;
static char log_worker[128] = "-";
static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The last warn and error lines, for /status: an operator sees why the
 * worker is unhappy without reading its log. */
#define RECENT_MAX 16
static char recent[RECENT_MAX][1100];
static size_t recent_next, recent_cnt;

int pgs_log_recent(size_t i, char *buf, size_t size)
{
    if (i >= recent_cnt)
        return -1;
    snprintf(buf, size, "%s", recent[(recent_next + RECENT_MAX - 1 - i) % RECENT_MAX]);
    return 0;
}

void pgs_log_set_level(pgs_log_level_t level)
{
    log_level = level;
}

int pgs_log_level_parse(const char *name, pgs_log_level_t *level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (pgs_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void pgs_log_set_worker(const char *worker_id)
{
    snprintf(log_worker, sizeof(log_worker), "%s", worker_id);
}

void pgs_log(pgs_log_level_t level, const char *module, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* keep one event on one line with balanced quotes */
    for (char *p = msg; *p; p++) {
        if (*p == '"')
            *p = '\'';
        else if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "ts=%s.%03ldZ level=%s worker=%s module=%s msg=\"%s\"\n", ts,
            (long)(tv.tv_usec / 1000), level_names[level], log_worker, module, msg);
    if (level >= PGS_LOG_WARN) {
        snprintf(recent[recent_next], sizeof(recent[0]), "%s.%03ldZ %s %s: %s", ts,
                 (long)(tv.tv_usec / 1000), level_names[level], module, msg);
        recent_next = (recent_next + 1) % RECENT_MAX;
        if (recent_cnt < RECENT_MAX)
            recent_cnt++;
    }
}
