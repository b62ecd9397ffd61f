/* Configuration: loading, validation, environment overrides, typed getters and reload over the
 * settings table. */
#include "common/config_internal.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void errstr_append(char *errstr, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errstr_append(char *errstr, size_t size, const char *fmt, ...)
{
    if (errstr == NULL || size == 0)
        return;
    size_t used = strnlen(errstr, size);
    if (used >= size - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr + used, size - used, fmt, ap);
    va_end(ap);
}

static int cfg_enum_has(const char *values, const char *value)
{
    size_t len = strlen(value);
    for (const char *p = values; *p;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && len > 0 && strncmp(p, value, n) == 0)
            return 1;
        p += n + (bar ? 1 : 0);
    }
    return 0;
}

static int cfg_parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Validates @p value for key @p idx and stores it in canonical form; the
 * message names the key and the offending text. Only string keys can hold
 * a secret, and they never fail validation, so the text is safe to show. */
static int cfg_assign(pgs_config_t *cfg, int idx, const char *value, char *msg, size_t msgsz)
{
    const cfg_def_t *def = &pgs_config_table[idx];
    char canon[64], range[64];
    const char *text = value;
    int64_t i = 0;
    double d = 0;

    switch (def->type) {
    case CT_STRING:
        break;
    case CT_ENUM:
        if (!cfg_enum_has(def->values, value)) {
            snprintf(msg, msgsz, "%s: '%s' is not one of %s", def->name, value, def->values);
            return -1;
        }
        break;
    case CT_BOOL: {
        int b;
        if (cfg_parse_bool(value, &b) != 0) {
            snprintf(msg, msgsz,
                     "%s: '%s' is not a boolean (expected true|false|yes|no|on|off|1|0)", def->name,
                     value);
            return -1;
        }
        i = b;
        text = b ? "true" : "false";
        break;
    }
    case CT_INT: {
        char *end;
        pgs_config_table_range(def, range, sizeof(range));
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (end == value || *end != '\0') {
            snprintf(msg, msgsz, "%s: '%s' is not an integer (expected %s)", def->name, value,
                     range);
            return -1;
        }
        if (errno == ERANGE || (double)v < def->min || (double)v > def->max) {
            snprintf(msg, msgsz, "%s: '%s' is out of range (expected %s)", def->name, value, range);
            return -1;
        }
        i = v;
        snprintf(canon, sizeof(canon), "%lld", v);
        text = canon;
        break;
    }
    case CT_DOUBLE: {
        char *end;
        pgs_config_table_range(def, range, sizeof(range));
        errno = 0;
        d = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(d)) {
            snprintf(msg, msgsz, "%s: '%s' is not a number (expected %s)", def->name, value, range);
            return -1;
        }
        if (errno == ERANGE || d < def->min || d > def->max) {
            snprintf(msg, msgsz, "%s: '%s' is out of range (expected %s)", def->name, value, range);
            return -1;
        }
        /* shortest text that reads back as the same double */
        snprintf(canon, sizeof(canon), "%.15g", d);
        if (strtod(canon, NULL) != d)
            snprintf(canon, sizeof(canon), "%.17g", d);
        text = canon;
        break;
    }
    }

    char *copy = strdup(text);
    if (copy == NULL) {
        snprintf(msg, msgsz, "%s: out of memory", def->name);
        return -1;
    }
    free(cfg->vals[idx].text);
    cfg->vals[idx].text = copy;
    cfg->vals[idx].i = i;
    cfg->vals[idx].d = d;
    return 0;
}

/* A repeated kafka key keeps its first position, as librdkafka would keep
 * only the last value anyway. */
static int cfg_kafka_put(pgs_config_t *cfg, const char *name, const char *value, char *msg,
                         size_t msgsz)
{
    if (*name == '\0') {
        snprintf(msg, msgsz, "empty kafka property name after '" KAFKA_PREFIX "'");
        return -1;
    }
    char *v = strdup(value);
    if (v == NULL)
        goto oom;
    for (size_t k = 0; k < cfg->nkafka; k++) {
        if (strcmp(cfg->kafka[k].name, name) == 0) {
            free(cfg->kafka[k].value);
            cfg->kafka[k].value = v;
            return 0;
        }
    }
    if (cfg->nkafka == cfg->kafka_cap) {
        size_t cap = cfg->kafka_cap ? cfg->kafka_cap * 2 : 16;
        cfg_kafka_t *grown = realloc(cfg->kafka, cap * sizeof(*grown));
        if (grown == NULL)
            goto oom_v;
        cfg->kafka = grown;
        cfg->kafka_cap = cap;
    }
    char *n = strdup(name);
    if (n == NULL)
        goto oom_v;
    cfg->kafka[cfg->nkafka].name = n;
    cfg->kafka[cfg->nkafka].value = v;
    cfg->nkafka++;
    return 0;
oom_v:
    free(v);
oom:
    snprintf(msg, msgsz, "out of memory");
    return -1;
}

static int cfg_set(pgs_config_t *cfg, const char *name, const char *value, char *msg, size_t msgsz)
{
    if (strncmp(name, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
        return cfg_kafka_put(cfg, name + strlen(KAFKA_PREFIX), value, msg, msgsz);
    int idx = pgs_config_table_find(name);
    if (idx < 0) {
        snprintf(msg, msgsz, "unknown key '%s'", name);
        return -1;
    }
    return cfg_assign(cfg, idx, value, msg, msgsz);
}

/* Empty variables count as unset so that templated deployments with a
 * blank value do not erase the file's setting. */
static int cfg_apply_env(pgs_config_t *cfg, char *errstr, size_t errstr_size)
{
    int nerr = 0;
    for (size_t i = 0; i < pgs_config_table_len; i++) {
        const char *env = pgs_config_table[i].env;
        const char *v = env ? getenv(env) : NULL;
        if (v == NULL || *v == '\0')
            continue;
        char msg[512];
        if (cfg_assign(cfg, (int)i, v, msg, sizeof(msg)) != 0) {
            errstr_append(errstr, errstr_size, "%s: %s\n", env, msg);
            nerr++;
        }
    }
    return nerr;
}

pgs_config_t *pgs_config_new(void)
{
    pgs_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    cfg->vals = calloc(pgs_config_table_len, sizeof(*cfg->vals));
    if (cfg->vals == NULL) {
        free(cfg);
        return NULL;
    }
    char msg[512];
    for (size_t i = 0; i < pgs_config_table_len; i++) {
        if (cfg_assign(cfg, (int)i, pgs_config_table[i].def, msg, sizeof(msg)) != 0)
            goto fail;
    }
    /* A bad environment value is reported by pgs_config_load and
     * check-config; here the default simply stays. */
    cfg_apply_env(cfg, NULL, 0);
    return cfg;
fail:
    pgs_config_free(cfg);
    return NULL;
}

void pgs_config_free(pgs_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < pgs_config_table_len; i++)
        free(cfg->vals[i].text);
    free(cfg->vals);
    for (size_t k = 0; k < cfg->nkafka; k++) {
        free(cfg->kafka[k].name);
        free(cfg->kafka[k].value);
    }
    free(cfg->kafka);
    free(cfg);
}

int pgs_config_set(pgs_config_t *cfg, const char *name, const char *value, char *errstr,
                   size_t errstr_size)
{
    char msg[512];
    if (cfg_set(cfg, name, value, msg, sizeof(msg)) == 0)
        return 0;
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "%s", msg);
    return -1;
}

/* --- file parsing ------------------------------------------------------ */

typedef struct {
    pgs_config_t *cfg;
    FILE *fp;
    const char *path;
    char *line; /* getline buffer */
    size_t line_cap;
    int lineno;
    int in_bad_section; /* after a malformed [header], until the next good one */
    int nerr;
    char *errstr;
    size_t errstr_size;
} cfg_parse_t;

static void cfg_parse_error(cfg_parse_t *ps, const char *msg)
{
    errstr_append(ps->errstr, ps->errstr_size, "%s:%d: %s\n", ps->path, ps->lineno, msg);
    ps->nerr++;
}

/* inih's reader callback, called once per line. Reading whole lines here
 * gives the handler its line number, and lets syntax errors be reported
 * (inih itself would only return the first one). Lines are handed over
 * without leading blanks so that inih never sees a multi-line
 * continuation: an indented key is just a key. */
static char *cfg_reader(char *str, int num, void *stream)
{
    cfg_parse_t *ps = stream;
    ssize_t n = getline(&ps->line, &ps->line_cap, ps->fp);
    if (n < 0)
        return NULL;
    ps->lineno++;
    char *s = ps->line;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    if (ps->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (isspace((unsigned char)*s))
        s++;

    str[0] = '\0';
    if (*s == '\0' || *s == '#' || *s == ';')
        return str;
    if (strlen(s) >= (size_t)num) {
        char msg[128];
        snprintf(msg, sizeof(msg), "line longer than %d characters", num - 1);
        cfg_parse_error(ps, msg);
        return str;
    }
    if (*s == '[') {
        ps->in_bad_section = strchr(s, ']') == NULL;
        if (ps->in_bad_section) {
            cfg_parse_error(ps, "section header without closing ']'");
            return str;
        }
    } else {
        size_t key_len = strcspn(s, "=:");
        if (s[key_len] == '\0') {
            cfg_parse_error(ps, "expected 'key = value'");
            return str;
        }
        if (key_len == 0) {
            cfg_parse_error(ps, "missing key name before '='");
            return str;
        }
    }
    memcpy(str, s, strlen(s) + 1);
    return str;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
    cfg_parse_t *ps = user;
    char full[256], msg[512];
    /* Keys under a broken header would land in the previous section and
     * bury the one real error under "unknown key" noise. */
    if (ps->in_bad_section)
        return 1;
    int n = *section ? snprintf(full, sizeof(full), "%s.%s", section, name)
                     : snprintf(full, sizeof(full), "%s", name);
    if (n < 0 || (size_t)n >= sizeof(full)) {
        cfg_parse_error(ps, "key name too long");
        return 1;
    }
    if (cfg_set(ps->cfg, full, value, msg, sizeof(msg)) != 0)
        cfg_parse_error(ps, msg);
    /* Errors are collected here; returning 0 would only make inih remember
     * the first one. */
    return 1;
}

/* Constraints between keys, checked once the whole file is read. */
static int cfg_check_relations(const pgs_config_t *cfg, const char *path, char *errstr,
                               size_t errstr_size)
{
    int nerr = 0;
    if (pgs_config_int(cfg, "retry.backoff_initial_ms") >
        pgs_config_int(cfg, "retry.backoff_max_ms")) {
        errstr_append(errstr, errstr_size,
                      "%s: retry.backoff_initial_ms must not exceed retry.backoff_max_ms\n", path);
        nerr++;
    }
    /* 0 turns the timeouts off, so the lower bound is then moot. */
    int64_t timeout_max = pgs_config_int(cfg, "apply.statement_timeout_ms");
    if (timeout_max != 0 && pgs_config_int(cfg, "apply.statement_timeout_min_ms") > timeout_max) {
        errstr_append(errstr, errstr_size,
                      "%s: apply.statement_timeout_min_ms must not exceed "
                      "apply.statement_timeout_ms\n",
                      path);
        nerr++;
    }
    return nerr;
}

int pgs_config_load(pgs_config_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    cfg_parse_t ps = {.cfg = cfg, .path = path, .errstr = errstr, .errstr_size = errstr_size};
    ps.fp = fopen(path, "r");
    if (ps.fp == NULL) {
        errstr_append(errstr, errstr_size, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    int rc = ini_parse_stream(cfg_reader, &ps, cfg_handler, &ps);
    if (ferror(ps.fp)) {
        errstr_append(errstr, errstr_size, "%s:%d: read error\n", path, ps.lineno);
        ps.nerr++;
    } else if (rc != 0 && ps.nerr == 0) {
        /* The reader screens syntax, so inih should have nothing to add. */
        errstr_append(errstr, errstr_size, "%s:%d: syntax error\n", path, rc > 0 ? rc : 0);
        ps.nerr++;
    }
    fclose(ps.fp);
    free(ps.line);
    ps.nerr += cfg_apply_env(cfg, errstr, errstr_size);
    ps.nerr += cfg_check_relations(cfg, path, errstr, errstr_size);
    return ps.nerr;
}

/* --- getters ------------------------------------------------------------ */

static int cfg_lookup(const char *name, cfg_type_t type)
{
    int idx = pgs_config_table_find(name);
    if (idx < 0 || pgs_config_table[idx].type != type) {
        pgs_error("config", "config key '%s' %s", name,
                  idx < 0 ? "is not in the table" : "read with the wrong type");
        abort();
    }
    return idx;
}

const char *pgs_config_str(const pgs_config_t *cfg, const char *name)
{
    int idx = pgs_config_table_find(name);
    if (idx >= 0 && pgs_config_table[idx].type == CT_ENUM)
        return cfg->vals[idx].text;
    return cfg->vals[cfg_lookup(name, CT_STRING)].text;
}

int64_t pgs_config_int(const pgs_config_t *cfg, const char *name)
{
    return cfg->vals[cfg_lookup(name, CT_INT)].i;
}

double pgs_config_double(const pgs_config_t *cfg, const char *name)
{
    return cfg->vals[cfg_lookup(name, CT_DOUBLE)].d;
}

int pgs_config_bool(const pgs_config_t *cfg, const char *name)
{
    return (int)cfg->vals[cfg_lookup(name, CT_BOOL)].i;
}

void pgs_config_kafka_foreach(const pgs_config_t *cfg,
                              void (*cb)(const char *name, const char *value, void *opaque),
                              void *opaque)
{
    for (size_t k = 0; k < cfg->nkafka; k++)
        cb(cfg->kafka[k].name, cfg->kafka[k].value, opaque);
}

/* --- reload ------------------------------------------------------------- */

static const char *cfg_kafka_get(const pgs_config_t *cfg, const char *name)
{
    for (size_t k = 0; k < cfg->nkafka; k++)
        if (strcmp(cfg->kafka[k].name, name) == 0)
            return cfg->kafka[k].value;
    return NULL;
}

int pgs_config_reload(pgs_config_t *cur, const pgs_config_t *next, char *errstr, size_t errstr_size)
{
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    int kept = 0;
    char msg[512];
    for (size_t i = 0; i < pgs_config_table_len; i++) {
        if (strcmp(cur->vals[i].text, next->vals[i].text) == 0)
            continue;
        if (pgs_config_table[i].flags & CF_RELOAD) {
            if (cfg_assign(cur, (int)i, next->vals[i].text, msg, sizeof(msg)) != 0)
                errstr_append(errstr, errstr_size, "%s\n", msg);
            continue;
        }
        errstr_append(errstr, errstr_size, "%s: not reloadable, restart to apply\n",
                      pgs_config_table[i].name);
        kept++;
    }
    /* The Kafka client is built once, so every kafka.* key needs a restart. */
    for (size_t k = 0; k < next->nkafka; k++) {
        const char *old = cfg_kafka_get(cur, next->kafka[k].name);
        if (old == NULL || strcmp(old, next->kafka[k].value) != 0) {
            errstr_append(errstr, errstr_size,
                          KAFKA_PREFIX "%s: not reloadable, restart to apply\n",
                          next->kafka[k].name);
            kept++;
        }
    }
    for (size_t k = 0; k < cur->nkafka; k++) {
        if (cfg_kafka_get(next, cur->kafka[k].name) == NULL) {
            errstr_append(errstr, errstr_size,
                          KAFKA_PREFIX "%s: not reloadable, restart to apply\n",
                          cur->kafka[k].name);
            kept++;
        }
    }
    return kept;
}

/* --- output ------------------------------------------------------------- */
