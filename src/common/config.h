/* Configuration: one declarative table (name, type, default, bounds,
 * reloadable, help) that parses the file, validates, prints help and
 * generates docs/config-reference.md. `kafka.*` keys pass through. */
#ifndef PGSCRIBE_CONFIG_H
#define PGSCRIBE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

typedef struct pgs_config_s pgs_config_t;

/** @brief A config holding every table default (and environment overrides:
 *         PGSCRIBE_PG_CONNINFO sets pg.conninfo). */
pgs_config_t *pgs_config_new(void);
void pgs_config_free(pgs_config_t *cfg);

/**
 * @brief Reads an INI-style file (`[section]` + `key = value`, `#`/`;` comments;
 *        a key inside [section] is named section.key).
 * @returns the number of errors; each is one "file:line: message" line appended
 *          to @p errstr (truncated to @p errstr_size). Unknown keys, bad types
 *          and out-of-bounds values are errors. 0 on success.
 */
int pgs_config_load(pgs_config_t *cfg, const char *path, char *errstr, size_t errstr_size);

/** @brief Sets one key from text (same checks as the file). @returns 0 or -1. */
int pgs_config_set(pgs_config_t *cfg, const char *name, const char *value, char *errstr,
                   size_t errstr_size);

/** Typed getters; the name must be a key of the table (abort() otherwise: a
 *  programming error). Strings are never NULL (empty string for unset). */
const char *pgs_config_str(const pgs_config_t *cfg, const char *name);
int64_t pgs_config_int(const pgs_config_t *cfg, const char *name);
double pgs_config_double(const pgs_config_t *cfg, const char *name);
int pgs_config_bool(const pgs_config_t *cfg, const char *name);

/** @brief Calls @p cb for every `kafka.*` key with the prefix removed
 *         (e.g. "bootstrap.servers"), in file order. */
void pgs_config_kafka_foreach(const pgs_config_t *cfg,
                              void (*cb)(const char *name, const char *value, void *opaque),
                              void *opaque);

/**
 * @brief Applies @p next onto @p cur for reloadable keys only.
 * @returns the number of non-reloadable keys whose values differ (they are
 *          kept as they are in @p cur and named in @p errstr).
 */
int pgs_config_reload(pgs_config_t *cur, const pgs_config_t *next, char *errstr,
                      size_t errstr_size);

/** @brief Human help for every key (`pgscribe check-config --help-config`). */
void pgs_config_print_help(FILE *fp);
/** @brief Markdown reference table (docs/config-reference.md). */
void pgs_config_print_markdown(FILE *fp);
/** @brief Effective values, one `name = value` per line; secrets masked: the
 *         conninfo options whose dispchar is "*" (password, sslpassword) in any
 *         value that parses as a conninfo, a URL's user:password@, and
 *         librdkafka's sensitive properties (pgs_config_kafka_sensitive). */
void pgs_config_print_values(const pgs_config_t *cfg, FILE *fp);
/** @returns 1 if librdkafka property @p name (no kafka. prefix) holds a secret. */
int pgs_config_kafka_sensitive(const char *name);
/** @returns 1 if value @p v holds a secret that --print would mask. */
int pgs_config_value_secret(const char *v);
/**
 * @brief Whether the config file at @p path holds a secret (a sensitive
 *        kafka key, a conninfo password) and is group- or world-accessible.
 * @returns 1 with the line, key name (never the value) and mode in @p why.
 */
int pgs_config_file_secret_exposed(const char *path, char *why, size_t why_size);

#endif
