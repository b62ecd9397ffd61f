/* Structured logging: the one writer of pgscribe's stderr lines, logfmt or
 * JSON. librdkafka's and libpq's messages come here too (kafkaconf.c,
 * run/connect.c), so an operator parses one format. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/sbuf.h"

/* set on the main thread (start, SIGHUP), read on any */
static _Atomic pgs_log_level_t log_level = PGS_LOG_INFO;
static _Atomic pgs_log_format_t log_format = PGS_LOG_LOGFMT;
static char log_worker[128] = "-";
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"logfmt", "json"};
/* librdkafka logs from its own threads and the catalog reloader from its
 * helper: one line at a time, and the ring below stays whole */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* The last warn and error lines, for /status: an operator sees why the
 * worker is unhappy without reading its log. */
#define RECENT_MAX 16
static char recent[RECENT_MAX][1100];
static size_t recent_next, recent_cnt;

int pgs_log_recent(size_t i, char *buf, size_t size)
{
    pthread_mutex_lock(&log_lock);
    int rc = -1;
    if (i < recent_cnt) {
        snprintf(buf, size, "%s", recent[(recent_next + RECENT_MAX - 1 - i) % RECENT_MAX]);
        rc = 0;
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
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

void pgs_log_set_format(pgs_log_format_t format)
{
    log_format = format;
}

int pgs_log_format_parse(const char *name, pgs_log_format_t *format)
{
    for (int i = 0; i < 2; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (pgs_log_format_t)i;
            return 0;
        }
    }
    return -1;
}

void pgs_log_set_worker(const char *worker_id)
{
    snprintf(log_worker, sizeof(log_worker), "%s", worker_id);
}

/* A logfmt value: bare when it is a plain token (and @p quote is 0), else quoted with \" \\ \n
 * escapes. Control bytes become spaces: one event stays on one line. */
static void putch(pgs_sbuf_t *sb, char ch)
{
    pgs_sbuf_putn(sb, &ch, 1);
}

static void logfmt_value(pgs_sbuf_t *sb, const char *v, int quote)
{
    int bare = !quote && *v != '\0';
    for (const char *p = v; *p && bare; p++)
        bare = (unsigned char)*p > ' ' && *p != '"' && *p != '=' && *p != '\\' && *p != 0x7f;
    if (bare) {
        pgs_sbuf_puts(sb, v);
        return;
    }
    putch(sb, '"');
    for (const char *p = v; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            putch(sb, '\\');
            putch(sb, (char)ch);
        } else if (ch == '\n') {
            pgs_sbuf_puts(sb, "\\n");
        } else {
            putch(sb, ch < ' ' || ch == 0x7f ? ' ' : (char)ch);
        }
    }
    putch(sb, '"');
}

/* A JSON string; bytes that are not UTF-8 become '?' so every line parses. */
static void json_string(pgs_sbuf_t *sb, const char *v)
{
    putch(sb, '"');
    const unsigned char *p = (const unsigned char *)v;
    while (*p) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            putch(sb, '\\');
            putch(sb, (char)ch);
        } else if (ch == '\n') {
            pgs_sbuf_puts(sb, "\\n");
        } else if (ch < ' ') {
            pgs_sbuf_printf(sb, "\\u%04x", ch);
        } else if (ch < 0x80) {
            putch(sb, (char)ch);
        } else {
            int n = ch >= 0xf0 && ch < 0xf5 ? 3 : ch >= 0xe0 ? 2 : ch >= 0xc2 && ch < 0xe0 ? 1 : -1;
            int ok = n > 0;
            for (int i = 1; ok && i <= n; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (!ok) {
                putch(sb, '?');
                p++;
                continue;
            }
            for (int i = 0; i <= n; i++)
                putch(sb, (char)p[i]);
            p += n;
        }
        p++;
    }
    putch(sb, '"');
}

static void field(pgs_sbuf_t *sb, pgs_log_format_t fmt, int first, const char *key,
                  const char *value)
{
    if (fmt == PGS_LOG_JSON) {
        putch(sb, first ? '{' : ',');
        json_string(sb, key);
        putch(sb, ':');
        json_string(sb, value);
    } else {
        if (!first)
            putch(sb, ' ');
        pgs_sbuf_puts(sb, key);
        putch(sb, '=');
        /* msg is always quoted, as it always was: greps of msg="... hold */
        logfmt_value(sb, value, strcmp(key, "msg") == 0);
    }
}

void pgs_log_fmt_line(pgs_sbuf_t *sb, pgs_log_format_t fmt, const char *ts, pgs_log_level_t level,
                      const char *worker, const char *module, const char *msg,
                      const char *const *kv)
{
    field(sb, fmt, 1, "ts", ts);
    field(sb, fmt, 0, "level", level_names[level]);
    field(sb, fmt, 0, "worker", worker);
    field(sb, fmt, 0, "module", module);
    field(sb, fmt, 0, "msg", msg);
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
        field(sb, fmt, 0, kv[i], kv[i + 1]);
    if (fmt == PGS_LOG_JSON)
        putch(sb, '}');
    putch(sb, '\n');
}

void pgs_log_v(pgs_log_level_t level, const char *module, const char *const *kv, const char *fmt,
               va_list ap)
{
    if (level < log_level)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char sec[32], ts[64];
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, sizeof(ts), "%s.%03ldZ", sec, (long)(tv.tv_usec / 1000));
    pthread_mutex_lock(&log_lock);
    pgs_sbuf_t sb = {0};
    pgs_log_fmt_line(&sb, log_format, ts, level, log_worker, module, msg, kv);
    if (sb.buf)
        fwrite(sb.buf, 1, sb.len, stderr);
    if (level >= PGS_LOG_WARN) {
        pgs_sbuf_t r = {0};
        pgs_sbuf_printf(&r, "%s %s %s: %s", ts, level_names[level], module, msg);
        for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
            pgs_sbuf_printf(&r, " %s=%s", kv[i], kv[i + 1]);
        snprintf(recent[recent_next], sizeof(recent[0]), "%s", r.buf ? r.buf : "");
        free(r.buf);
        recent_next = (recent_next + 1) % RECENT_MAX;
        if (recent_cnt < RECENT_MAX)
            recent_cnt++;
    }
    pthread_mutex_unlock(&log_lock);
    free(sb.buf);
}

void pgs_log_kv(pgs_log_level_t level, const char *module, const char *const *kv, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    pgs_log_v(level, module, kv, fmt, ap);
    va_end(ap);
}

void pgs_log(pgs_log_level_t level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pgs_log_v(level, module, NULL, fmt, ap);
    va_end(ap);
}
