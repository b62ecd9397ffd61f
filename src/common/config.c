/* Configuration: one declarative table that drives parsing, validation, help and docs. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { CT_STRING, CT_INT, CT_DOUBLE, CT_BOOL, CT_ENUM } cfg_type_t;

#define CF_RELOAD 0x1 /* applied by a reload without restart */

typedef struct {
    const char *name;
    cfg_type_t type;
    const char *def;    /* default, as it would be written in the file */
    double min, max;    /* bounds of int and double keys */
    const char *values; /* enum: allowed values separated by '|' */
    unsigned flags;
    const char *env; /* environment variable that overrides the file, or NULL */
    const char *help;
} cfg_def_t;

/* clang-format off */
#define CF_STR(n, d, fl, h)          {n, CT_STRING, d, 0, 0, NULL, fl, NULL, h}
#define CF_STR_ENV(n, d, fl, env, h) {n, CT_STRING, d, 0, 0, NULL, fl, env, h}
#define CF_INT(n, d, lo, hi, fl, h)  {n, CT_INT, d, lo, hi, NULL, fl, NULL, h}
#define CF_DBL(n, d, lo, hi, fl, h)  {n, CT_DOUBLE, d, lo, hi, NULL, fl, NULL, h}
#define CF_BOOL(n, d, fl, h)         {n, CT_BOOL, d, 0, 0, NULL, fl, NULL, h}
#define CF_ENUM(n, d, vals, fl, h)   {n, CT_ENUM, d, 0, 0, vals, fl, NULL, h}
/* clang-format on */

static const cfg_def_t cfg_table[] = {
    CF_STR("worker.id", "", 0,
           "Worker identity stamped on logs, metrics and dead letters; empty means "
           "hostname-pid chosen at start."),
    CF_STR("consumer.group", "pgscribe", 0,
           "Kafka consumer group id; workers sharing it split the topic partitions."),
    CF_STR("topic.commands", "clinic.commands", 0, "Topic of WriteCommand messages to apply."),
    CF_STR("topic.audit", "clinic.audit", 0,
           "Topic of AuditEvent messages stored in the audit trail."),
    CF_STR("topic.commands_dlq", "clinic.commands.dlq", 0,
           "Dead-letter topic for commands that fail permanently."),
    CF_STR("topic.audit_dlq", "clinic.audit.dlq", 0,
           "Dead-letter topic for audit events that fail permanently."),
    CF_STR("topic.metrics", "pgscribe.metrics", 0,
           "Topic receiving one WorkerMetrics record per worker per interval."),
    CF_STR_ENV("pg.conninfo", "", 0, "PGSCRIBE_PG_CONNINFO",
               "libpq connection string or URI (empty uses the PG* environment variables); the "
               "environment variable overrides it and is the preferred place for a password."),
    CF_STR("pg.schema", "clinic", 0,
           "Schema introspected for entities: tables with a clinic_id column, a primary key "
           "and row-level security."),
    CF_INT("apply.max_in_flight", "50", 1, 500, 0,
           "Maximum concurrent transactions, which is also the number of PostgreSQL "
           "connections."),
    CF_BOOL("apply.adaptive_in_flight", "true", 0,
            "Adapt the number of concurrent transactions, between 2 and apply.max_in_flight, to "
            "the one that commits the most commands per second (starting at 8); false keeps "
            "apply.max_in_flight."),
    CF_INT("apply.max_batch", "100", 1, 1000, 0, "Maximum commands grouped into one transaction."),
    CF_INT("apply.backlog_max", "20000", 100, 1000000, 0,
           "Decoded commands buffered in memory before fetching from Kafka pauses."),
    CF_INT("apply.multi_row_min", "8", 2, 1000, CF_RELOAD,
           "Commands of one transaction sharing a statement shape that go in one multi-row "
           "statement; fewer go one statement each."),
    CF_INT("apply.partition_window_max", "5000", 10, 1000000, CF_RELOAD,
           "A partition whose consumed but not yet completed messages exceed this is paused, "
           "and resumed when half of them are done."),
    CF_INT("apply.statement_timeout_ms", "30000", 0, 3600000, CF_RELOAD,
           "Upper bound of the adaptive statement_timeout set on each transaction, in "
           "milliseconds (0 disables statement and lock timeouts)."),
    CF_INT("apply.statement_timeout_min_ms", "2000", 0, 3600000, CF_RELOAD,
           "Lower bound of the adaptive statement_timeout, in milliseconds."),
    CF_INT("apply.lock_timeout_ms", "5000", 0, 3600000, CF_RELOAD,
           "Upper bound of the adaptive lock_timeout set on each transaction, in milliseconds "
           "(0 disables it)."),
    CF_DBL("apply.timeout_factor", "10", 1, 1000, CF_RELOAD,
           "Adaptive timeouts are this factor times the p99 latency observed for the statement "
           "shapes of a transaction, clamped to the bounds."),
    CF_INT("retry.max_attempts", "10", 1, 1000, CF_RELOAD,
           "Attempts of a command hit by transient database errors before it is dead-lettered "
           "with class db-transient."),
    CF_INT("retry.backoff_initial_ms", "100", 1, 60000, CF_RELOAD,
           "First delay before retrying a transient database error; it doubles, with jitter, "
           "on each attempt."),
    CF_INT("retry.backoff_max_ms", "30000", 10, 600000, CF_RELOAD,
           "Upper bound of the delay between retries of a transient error."),
    CF_INT("breaker.failure_threshold", "5", 1, 1000, CF_RELOAD,
           "Consecutive failed connection attempts or connection losses that open the circuit "
           "breaker: dispatch stops and partitions pause until a probe succeeds."),
    CF_INT("breaker.probe_interval_ms", "5000", 100, 600000, CF_RELOAD,
           "Longest delay between database probes while the breaker is open; probes start at "
           "250 ms and double up to this."),
    CF_INT("audit.max_in_flight", "4", 1, 100, 0,
           "Connections and concurrent transactions reserved for audit events, apart from the "
           "command pool, so a flood of one cannot starve the other."),
    CF_INT("audit.max_batch", "500", 1, 5000, 0, "Maximum audit events stored in one transaction."),
    CF_INT("metrics.interval_ms", "10000", 100, 3600000, CF_RELOAD,
           "Interval between WorkerMetrics records in milliseconds."),
    CF_BOOL("metrics.per_clinic", "true", CF_RELOAD,
            "Include per-clinic counts and database time in WorkerMetrics records."),
    CF_INT("shutdown.drain_timeout_ms", "30000", 100, 600000, CF_RELOAD,
           "Time allowed on shutdown or revocation for in-flight transactions to finish "
           "before offsets are committed."),
    CF_ENUM("log.level", "info", "debug|info|warn|error", CF_RELOAD,
            "Lowest level of log lines written to stderr."),
    CF_INT("log.slow_statement_ms", "1000", 0, 3600000, CF_RELOAD,
           "Transactions slower than this many milliseconds are logged with their entities and "
           "timing (0 disables it)."),
    CF_ENUM("produce.encoding", "avro", "avro|json", 0,
            "Encoding of the messages written by pgscribe produce."),
};

#define CFG_NKEYS    (sizeof(cfg_table) / sizeof(cfg_table[0]))
#define KAFKA_PREFIX "kafka."
#define MASK         "*****"

typedef struct {
    char *text; /* canonical text, owned; also the value of string and enum keys */
    int64_t i;
    double d;
} cfg_value_t;

typedef struct {
    char *name; /* without the kafka. prefix */
    char *value;
} cfg_kafka_t;

struct pgs_config_s {
    cfg_value_t vals[CFG_NKEYS];
    cfg_kafka_t *kafka; /* in file order */
    size_t nkafka, kafka_cap;
};

static const char *const type_names[] = {"string", "int", "double", "bool", "enum"};

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

static int cfg_find(const char *name)
{
    for (size_t i = 0; i < CFG_NKEYS; i++)
        if (strcmp(cfg_table[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void cfg_range(const cfg_def_t *def, char *buf, size_t size)
{
    if (def->type == CT_INT)
        snprintf(buf, size, "%lld..%lld", (long long)def->min, (long long)def->max);
    else
        snprintf(buf, size, "%.15g..%.15g", def->min, def->max);
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
    const cfg_def_t *def = &cfg_table[idx];
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
        cfg_range(def, range, sizeof(range));
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
        cfg_range(def, range, sizeof(range));
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
    int idx = cfg_find(name);
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
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const char *env = cfg_table[i].env;
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
    char msg[512];
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        if (cfg_assign(cfg, (int)i, cfg_table[i].def, msg, sizeof(msg)) != 0)
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
    for (size_t i = 0; i < CFG_NKEYS; i++)
        free(cfg->vals[i].text);
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
    int idx = cfg_find(name);
    if (idx < 0 || cfg_table[idx].type != type) {
        fprintf(stderr, "pgscribe: config key '%s' %s\n", name,
                idx < 0 ? "is not in the table" : "read with the wrong type");
        abort();
    }
    return idx;
}

const char *pgs_config_str(const pgs_config_t *cfg, const char *name)
{
    int idx = cfg_find(name);
    if (idx >= 0 && cfg_table[idx].type == CT_ENUM)
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
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        if (strcmp(cur->vals[i].text, next->vals[i].text) == 0)
            continue;
        if (cfg_table[i].flags & CF_RELOAD) {
            if (cfg_assign(cur, (int)i, next->vals[i].text, msg, sizeof(msg)) != 0)
                errstr_append(errstr, errstr_size, "%s\n", msg);
            continue;
        }
        errstr_append(errstr, errstr_size, "%s: not reloadable, restart to apply\n",
                      cfg_table[i].name);
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

static void cfg_describe_bounds(const cfg_def_t *def, char *buf, size_t size)
{
    switch (def->type) {
    case CT_INT:
    case CT_DOUBLE:
        cfg_range(def, buf, size);
        break;
    case CT_ENUM:
        snprintf(buf, size, "%s", def->values);
        break;
    case CT_BOOL:
        snprintf(buf, size, "true|false");
        break;
    case CT_STRING:
        buf[0] = '\0';
        break;
    }
}

void pgs_config_print_help(FILE *fp)
{
    char bounds[128];
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_def_t *def = &cfg_table[i];
        cfg_describe_bounds(def, bounds, sizeof(bounds));
        fprintf(fp, "%s (%s, default \"%s\"", def->name, type_names[def->type], def->def);
        if (bounds[0])
            fprintf(fp, ", %s %s",
                    def->type == CT_INT || def->type == CT_DOUBLE ? "range" : "one of", bounds);
        fprintf(fp, ", %s", def->flags & CF_RELOAD ? "reloadable" : "restart to change");
        if (def->env)
            fprintf(fp, ", env %s", def->env);
        fprintf(fp, ")\n    %s\n", def->help);
    }
    fprintf(fp, "kafka.* (string, passed to librdkafka without the kafka. prefix, restart to "
                "change)\n    Any librdkafka property, e.g. kafka.bootstrap.servers; a "
                "[kafka] section works too.\n"
                "kafka.consumer.*, kafka.producer.* (string, restart to change)\n    The "
                "same, for consumers only or producers only ([kafka.consumer] and "
                "[kafka.producer] sections).\n");
}

void pgs_config_print_markdown(FILE *fp)
{
    fprintf(fp, "<!-- Generated by `pgscribe check-config --markdown`; do not edit. -->\n\n");
    fprintf(fp, "Settings are read from an INI file (`-c FILE` or `$PGSCRIBE_CONFIG`): a key "
                "`x` inside `[section]` is named `section.x`. Every `kafka.*` key is passed "
                "to librdkafka with the `kafka.` prefix removed; `kafka.consumer.*` keys go to "
                "consumers only and `kafka.producer.*` keys to producers only, with that "
                "prefix removed. Reloadable keys take effect "
                "on reload; the others need a restart.\n\n");
    fprintf(fp, "| key | type | default | range / values | reload | description |\n");
    fprintf(fp, "| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const cfg_def_t *def = &cfg_table[i];
        fprintf(fp, "| `%s` | %s | ", def->name, type_names[def->type]);
        if (def->def[0])
            fprintf(fp, "`%s`", def->def);
        else
            fprintf(fp, "*(empty)*");
        fprintf(fp, " | ");
        if (def->type == CT_INT || def->type == CT_DOUBLE) {
            char range[64];
            cfg_range(def, range, sizeof(range));
            fprintf(fp, "%s", range);
        } else if (def->type == CT_ENUM || def->type == CT_BOOL) {
            /* '|' would split the table cell */
            const char *vals = def->type == CT_ENUM ? def->values : "true|false";
            for (const char *p = vals; *p; p++) {
                if (p == vals || p[-1] == '|')
                    fputc('`', fp);
                if (*p == '|')
                    fputs("`, ", fp);
                else
                    fputc(*p, fp);
            }
            fputc('`', fp);
        }
        fprintf(fp, " | %s | %s", def->flags & CF_RELOAD ? "yes" : "no", def->help);
        if (def->env)
            fprintf(fp, " Environment: `%s`.", def->env);
        fprintf(fp, " |\n");
    }
    fprintf(fp, "| `kafka.*` | string | | any librdkafka property | no | Passed to librdkafka "
                "unchanged without the prefix, e.g. `kafka.bootstrap.servers`. |\n");
}

/* Writes @p v with the password of a libpq conninfo (keyword or URI form)
 * or of any URL's user:password@ replaced by the mask. */
static void cfg_print_masked(FILE *fp, const char *v)
{
    static const char kw[] = "password";
    const size_t kwlen = sizeof(kw) - 1;
    const char *p = v;
    while (*p) {
        if (strncmp(p, "://", 3) == 0) {
            const char *auth = p + 3;
            const char *end = auth + strcspn(auth, "/?#");
            const char *at = NULL;
            for (const char *q = auth; q < end; q++)
                if (*q == '@')
                    at = q;
            const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
            if (colon) {
                fprintf(fp, "://%.*s:" MASK, (int)(colon - auth), auth);
                p = at;
                continue;
            }
            fputs("://", fp);
            p = auth;
            continue;
        }
        int boundary = p == v || isspace((unsigned char)p[-1]) || p[-1] == '?' || p[-1] == '&';
        if (boundary && strncmp(p, kw, kwlen) == 0) {
            const char *q = p + kwlen;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '=') {
                q++;
                while (*q == ' ' || *q == '\t')
                    q++;
                if (*q == '\'') {
                    for (q++; *q && *q != '\''; q++)
                        if (*q == '\\' && q[1])
                            q++;
                    if (*q == '\'')
                        q++;
                } else {
                    while (*q && !isspace((unsigned char)*q) && *q != '&')
                        q++;
                }
                fputs("password=" MASK, fp);
                p = q;
                continue;
            }
        }
        fputc(*p++, fp);
    }
}

void pgs_config_print_values(const pgs_config_t *cfg, FILE *fp)
{
    for (size_t i = 0; i < CFG_NKEYS; i++) {
        const char *v = cfg->vals[i].text;
        fprintf(fp, "%s = ", cfg_table[i].name);
        cfg_print_masked(fp, v);
        fputc('\n', fp);
    }
    for (size_t k = 0; k < cfg->nkafka; k++) {
        const char *name = cfg->kafka[k].name;
        fprintf(fp, KAFKA_PREFIX "%s = ", name);
        if (strcasestr(name, "password") || strcasestr(name, "secret"))
            fputs(MASK, fp);
        else
            cfg_print_masked(fp, cfg->kafka[k].value);
        fputc('\n', fp);
    }
}
