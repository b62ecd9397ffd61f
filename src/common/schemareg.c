/* Schema Registry client (see schemareg.h): libcurl requests, a cache of
 * schema texts by id, and a backoff after a failed request. */
#include "common/schemareg.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/sbuf.h"

#define SCHEMAREG_MAX_BODY (4 * 1024 * 1024)
#define SCHEMAREG_CT       "application/vnd.schemaregistry.v1+json"

typedef struct cached_s {
    struct cached_s *next;
    int32_t id;
    char *schema;
} cached_t;

struct pgs_schemareg_s {
    char *url; /* without a trailing '/' */
    char *user;
    char *password;
    char *ca_location;
    int tls_verify;
    int timeout_ms;
    int backoff_min_ms, backoff_max_ms;
    int backoff_ms;      /* the current pause, 0 while the registry answers */
    int64_t retry_at_us; /* no request before then */
    int down;            /* the last request failed for the registry being away */
    cached_t *cache;     /* schemas by id, never evicted: ids are immutable */
    uint64_t fetches, failures;
    CURL *curl;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

pgs_schemareg_t *pgs_schemareg_new(const pgs_schemareg_opts_t *o, char *errstr, size_t errstr_size)
{
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        snprintf(errstr, errstr_size, "schema_registry.url must start with http:// or https://");
        return NULL;
    }
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(errstr, errstr_size, "libcurl initialisation failed");
            return NULL;
        }
        curl_ready = 1; /* for the process's life, as libcurl asks */
    }
    pgs_schemareg_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->curl = curl_easy_init())) {
        free(r);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->url = strdup(o->url);
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/')
        r->url[--n] = '\0';
    r->user = dup_or_null(o->user);
    r->password = dup_or_null(o->password);
    r->ca_location = dup_or_null(o->ca_location);
    r->tls_verify = o->tls_verify;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    r->backoff_min_ms = o->backoff_min_ms > 0 ? o->backoff_min_ms : 100;
    r->backoff_max_ms = o->backoff_max_ms >= r->backoff_min_ms ? o->backoff_max_ms : 5000;
    return r;
}

void pgs_schemareg_free(pgs_schemareg_t *r)
{
    if (!r)
        return;
    for (cached_t *c = r->cache, *next; c; c = next) {
        next = c->next;
        free(c->schema);
        free(c);
    }
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->url);
    free(r->user);
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    free(r->ca_location);
    free(r);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    pgs_sbuf_t *sb = opaque;
    size_t n = size * nmemb;
    if (sb->len + n > SCHEMAREG_MAX_BODY)
        return 0; /* ends the transfer: no registry answer is that large */
    pgs_sbuf_putn(sb, ptr, n);
    return n;
}

/* One request; @p body NULL for a GET. @returns the HTTP status, or -1 with
 * curl's reason in @p errstr when there was no answer. */
static long request(pgs_schemareg_t *r, const char *path, const char *body, pgs_sbuf_t *out,
                    char *errstr, size_t errstr_size)
{
    CURL *c = r->curl;
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", r->url, path);
    curl_easy_reset(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: " SCHEMAREG_CT ", application/json");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: " SCHEMAREG_CT);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (r->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (r->ca_location)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_location);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        snprintf(errstr, errstr_size, "schema registry: %s", curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* A status that says the registry is away or refuses us for now: retried
 * after the backoff, never taken as an answer about the id. */
static int status_unavailable(long status)
{
    return status < 0 || status >= 500 || status == 401 || status == 403 || status == 408 ||
           status == 429;
}

static void note_failure(pgs_schemareg_t *r)
{
    r->failures++;
    r->down = 1;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : r->backoff_min_ms;
    if (r->backoff_ms > r->backoff_max_ms)
        r->backoff_ms = r->backoff_max_ms;
    r->retry_at_us = pgs_clock_now_us() + (int64_t)r->backoff_ms * 1000;
}

static void note_answer(pgs_schemareg_t *r)
{
    r->down = 0;
    r->backoff_ms = 0;
    r->retry_at_us = 0;
}

static const char *cache_find(const pgs_schemareg_t *r, int32_t id)
{
    for (const cached_t *c = r->cache; c; c = c->next)
        if (c->id == id)
            return c->schema;
    return NULL;
}

pgs_schemareg_rc_t pgs_schemareg_get(pgs_schemareg_t *r, int32_t id, const char **schema,
                                     char *errstr, size_t errstr_size)
{
    *schema = cache_find(r, id);
    if (*schema)
        return PGS_SCHEMAREG_OK;
    if (r->retry_at_us && pgs_clock_now_us() < r->retry_at_us) {
        snprintf(errstr, errstr_size, "schema registry unavailable (next attempt in %lld ms)",
                 (long long)((r->retry_at_us - pgs_clock_now_us()) / 1000));
        return PGS_SCHEMAREG_UNAVAILABLE;
    }
    char path[64], why[200] = "";
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    pgs_sbuf_t sb = {0};
    long status = request(r, path, NULL, &sb, why, sizeof(why));
    if (status_unavailable(status)) {
        note_failure(r);
        if (status < 0)
            snprintf(errstr, errstr_size, "%s", why);
        else
            snprintf(errstr, errstr_size, "schema registry answered HTTP %ld for schema id %d",
                     status, (int)id);
        free(sb.buf);
        return PGS_SCHEMAREG_UNAVAILABLE;
    }
    note_answer(r);
    r->fetches++;
    if (status == 404) {
        snprintf(errstr, errstr_size, "schema id %d is not in the schema registry", (int)id);
        free(sb.buf);
        return PGS_SCHEMAREG_NOT_FOUND;
    }
    json_t *root = status == 200 && sb.buf ? json_loadb(sb.buf, sb.len, 0, NULL) : NULL;
    free(sb.buf);
    const char *text = json_string_value(json_object_get(root, "schema"));
    const char *type = json_string_value(json_object_get(root, "schemaType"));
    if (!text || (type && strcmp(type, "AVRO") != 0)) {
        pgs_schemareg_rc_t rc = PGS_SCHEMAREG_INVALID;
        if (type && text) { /* an answer about the id: no Avro schema has it */
            snprintf(errstr, errstr_size, "schema id %d is a %s schema, not Avro", (int)id, type);
            rc = PGS_SCHEMAREG_NOT_FOUND;
        } else {
            snprintf(errstr, errstr_size, "schema registry: HTTP %ld with no schema for id %d",
                     status, (int)id);
        }
        json_decref(root);
        return rc;
    }
    cached_t *c = calloc(1, sizeof(*c));
    c->id = id;
    c->schema = strdup(text);
    if (!c->schema)
        abort();
    c->next = r->cache;
    r->cache = c;
    json_decref(root);
    *schema = c->schema;
    return PGS_SCHEMAREG_OK;
}

/* The subject as a path segment: percent-encoded but for RFC 3986's
 * unreserved characters. */
static void encode_segment(const char *s, char *out, size_t out_size)
{
    size_t o = 0;
    for (; *s && o + 4 < out_size; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, out_size - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

pgs_schemareg_rc_t pgs_schemareg_register(pgs_schemareg_t *r, const char *subject,
                                          const char *schema_json, int32_t *id, char *errstr,
                                          size_t errstr_size)
{
    char seg[768], path[900], why[200] = "";
    encode_segment(subject, seg, sizeof(seg));
    snprintf(path, sizeof(path), "/subjects/%s/versions", seg);
    json_t *req = json_pack("{s:s, s:s}", "schema", schema_json, "schemaType", "AVRO");
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        snprintf(errstr, errstr_size, "out of memory");
        return PGS_SCHEMAREG_INVALID;
    }
    pgs_sbuf_t sb = {0};
    long status = request(r, path, body, &sb, why, sizeof(why));
    free(body);
    if (status_unavailable(status)) {
        note_failure(r);
        if (status < 0)
            snprintf(errstr, errstr_size, "%s", why);
        else
            snprintf(errstr, errstr_size, "schema registry answered HTTP %ld registering %s",
                     status, subject);
        free(sb.buf);
        return PGS_SCHEMAREG_UNAVAILABLE;
    }
    note_answer(r);
    json_t *root = sb.buf ? json_loadb(sb.buf, sb.len, 0, NULL) : NULL;
    json_t *jid = status == 200 ? json_object_get(root, "id") : NULL;
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX) {
        /* the registry's own message (e.g. an incompatible schema, 409) */
        const char *msg = json_string_value(json_object_get(root, "message"));
        snprintf(errstr, errstr_size, "schema registry refused %s: HTTP %ld%s%.200s", subject,
                 status, msg ? ": " : "", msg ? msg : "");
        json_decref(root);
        free(sb.buf);
        return PGS_SCHEMAREG_INVALID;
    }
    free(sb.buf);
    *id = (int32_t)json_integer_value(jid);
    json_decref(root);
    return PGS_SCHEMAREG_OK;
}

int pgs_schemareg_down(const pgs_schemareg_t *r)
{
    return r->down;
}

uint64_t pgs_schemareg_fetches(const pgs_schemareg_t *r)
{
    return r->fetches;
}

uint64_t pgs_schemareg_failures(const pgs_schemareg_t *r)
{
    return r->failures;
}
