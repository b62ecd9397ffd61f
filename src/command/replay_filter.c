/* Replay filters: class, code, time and clinic selection of dead letters,
 * and their listing without values. */
#include "command/replay_filter.h"

#include "common/dlqseal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Parses RFC 3339 ("2026-11-26T19:00:00Z", "...:00.123Z", "...:00+01:00")
 * into ms since the epoch. Fractions finer than a millisecond are dropped,
 * which matches the millisecond precision of pgscribe.failed_at.
 * @returns 0, or -1 if @p s is not such a timestamp. */
int pgs_replay_filter_parse_time(const char *s, size_t len, int64_t *out_ms)
{
    char buf[64];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(buf, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    const char *p = buf + consumed;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
            return -1;
        offset_s = (int64_t)oh * 3600 + om * 60;
        if (*p == '-')
            offset_s = -offset_s;
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *out_ms = ((int64_t)t - offset_s) * 1000 + ms;
    return 0;
}

/* @returns 1 if @p name is a dead-letter class name. */
int pgs_replay_filter_class_known(const char *name)
{
    for (int k = PGS_ECLASS_NONE + 1; k <= PGS_ECLASS_DB_PERMANENT; k++)
        if (strcmp(name, pgs_error_class_name((pgs_eclass_t)k)) == 0)
            return 1;
    return 0;
}

/* @returns the header's value as a NUL-terminated copy in @p buf, or NULL if
 *          absent (or too long for @p buf: no pgscribe header is). */
const char *pgs_replay_filter_header(rd_kafka_headers_t *hdrs, const char *name, char *buf,
                                     size_t size)
{
    const void *val = NULL;
    size_t len = 0;
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val || len >= size)
        return NULL;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return buf;
}

static int replay_in(const char *value, const char **set, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, set[i]) == 0)
            return 1;
    return 0;
}

/* The clinic of a dead letter: its pgscribe.clinic header, else the key up
 * to its first '/' (command keys are
 * clinic_id/entity/key, audit keys are clinic_id); without a key, the
 * clinic_id of the decoded value. @returns 0 and fills @p buf, or -1. */
static int replay_clinic(pgs_codec_t *codec, const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs,
                         char *buf, size_t size)
{
    if (pgs_replay_filter_header(hdrs, "pgscribe.clinic", buf, size) && *buf)
        return 0;
    if (m->key && m->key_len > 0) {
        const char *key = m->key;
        const char *slash = memchr(key, '/', m->key_len);
        size_t len = slash ? (size_t)(slash - key) : m->key_len;
        if (len >= size)
            return -1;
        memcpy(buf, key, len);
        buf[len] = '\0';
        return 0;
    }
    if (!m->payload || m->len == 0)
        return -1;
    int is_json = pgs_codec_headers_content_type(hdrs) == PGS_CONTENT_JSON;
    char errstr[256];
    const char *clinic = NULL;
    pgs_command_t *cmd = NULL;
    pgs_audit_event_t *ev = NULL;
    if (pgs_codec_decode_command(codec, m->payload, m->len, is_json, &cmd, errstr,
                                 sizeof(errstr)) == PGS_OK)
        clinic = cmd->clinic_id;
    else if (pgs_codec_decode_audit(codec, m->payload, m->len, is_json, &ev, errstr,
                                    sizeof(errstr)) == PGS_OK)
        clinic = ev->clinic_id;
    int rc = -1;
    if (clinic && strlen(clinic) < size) {
        snprintf(buf, size, "%s", clinic);
        rc = 0;
    }
    if (cmd)
        pgs_command_free(cmd);
    if (ev)
        pgs_command_audit_free(ev);
    return rc;
}

/* @returns 1 if the dead letter passes every given filter. */
int pgs_replay_filter_matches(const pgs_replay_opts_t *o, pgs_codec_t *codec,
                              const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs)
{
    char buf[256];
    if (o->nclasses) {
        const char *v = pgs_replay_filter_header(hdrs, "pgscribe.error.class", buf, sizeof(buf));
        if (!v || !replay_in(v, o->classes, o->nclasses))
            return 0;
    }
    if (o->ncodes) {
        const char *v = pgs_replay_filter_header(hdrs, "pgscribe.error.code", buf, sizeof(buf));
        if (!v || !replay_in(v, o->codes, o->ncodes))
            return 0;
    }
    if (o->has_since || o->has_until) {
        const char *v = pgs_replay_filter_header(hdrs, "pgscribe.failed_at", buf, sizeof(buf));
        int64_t at;
        if (!v || pgs_replay_filter_parse_time(v, strlen(v), &at) != 0)
            return 0;
        if ((o->has_since && at < o->since_ms) || (o->has_until && at > o->until_ms))
            return 0;
    }
    if (o->nclinics) {
        if (replay_clinic(codec, m, hdrs, buf, sizeof(buf)) != 0 ||
            !replay_in(buf, o->clinics, o->nclinics))
            return 0;
    }
    return 1;
}

static void replay_json_header(json_t *obj, const char *field, rd_kafka_headers_t *hdrs,
                               const char *name, int numeric)
{
    char buf[2048];
    const char *v = pgs_replay_filter_header(hdrs, name, buf, sizeof(buf));
    json_t *j = NULL;
    if (v && numeric) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (*v && *end == '\0')
            j = json_integer(n);
    } else if (v) {
        j = json_string(v); /* NULL for invalid UTF-8: printed as null */
    }
    json_object_set_new(obj, field, j ? j : json_null());
}

/* One JSON line per dead letter: identifiers and error headers only, never
 * the value (it may hold PHI). */
int pgs_replay_filter_print(const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "partition", json_integer(m->partition));
    json_object_set_new(obj, "offset", json_integer(m->offset));
    json_t *key = m->key ? json_stringn(m->key, m->key_len) : NULL;
    json_object_set_new(obj, "key", key ? key : json_null());
    replay_json_header(obj, "source_topic", hdrs, "pgscribe.source.topic", 0);
    replay_json_header(obj, "source_partition", hdrs, "pgscribe.source.partition", 1);
    replay_json_header(obj, "source_offset", hdrs, "pgscribe.source.offset", 1);
    replay_json_header(obj, "clinic", hdrs, "pgscribe.clinic", 0);
    replay_json_header(obj, "command_id", hdrs, "pgscribe.command_id", 0);
    replay_json_header(obj, "value_encryption", hdrs, PGS_DLQ_HDR_ENC, 0);
    replay_json_header(obj, "value_key_id", hdrs, PGS_DLQ_HDR_KEY_ID, 1);
    replay_json_header(obj, "class", hdrs, "pgscribe.error.class", 0);
    replay_json_header(obj, "code", hdrs, "pgscribe.error.code", 0);
    replay_json_header(obj, "message", hdrs, "pgscribe.error.message", 0);
    replay_json_header(obj, "attempts", hdrs, "pgscribe.attempts", 1);
    replay_json_header(obj, "worker", hdrs, "pgscribe.worker", 0);
    replay_json_header(obj, "failed_at", hdrs, "pgscribe.failed_at", 0);
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (!text)
        return -1;
    int rc = printf("%s\n", text) < 0 ? -1 : 0;
    free(text);
    return rc;
}
