/* Schema Registry client: a Confluent-compatible registry's
 * GET /schemas/ids/{id} (cached by id: a registry never changes what an id
 * means) and POST /subjects/{subject}/versions, over libcurl with basic auth
 * and TLS settings. Blocking calls, each bounded by the timeout. After a
 * failure that says the registry is away (no connection, a time-out, a 5xx)
 * further look-ups fail at once until a backoff has passed, so a registry
 * outage costs one attempt per backoff, not one per message. */
#ifndef PGSCRIBE_SCHEMAREG_H
#define PGSCRIBE_SCHEMAREG_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgs_schemareg_s pgs_schemareg_t;

typedef struct {
    const char *url;         /* base URL, e.g. http://127.0.0.1:8081/apis/ccompat/v7 */
    const char *user;        /* basic auth user; NULL or "" for none */
    const char *password;    /* basic auth password */
    const char *ca_location; /* CA bundle file for https; NULL or "": the system's */
    int tls_verify;          /* verify the server's certificate and host name */
    int timeout_ms;          /* per request, connection included */
    int backoff_min_ms;      /* first pause after a failure; doubles up to max */
    int backoff_max_ms;
} pgs_schemareg_opts_t;

typedef enum {
    PGS_SCHEMAREG_OK = 0,
    PGS_SCHEMAREG_NOT_FOUND = 1,    /* 404, or a schema that is not Avro: no such Avro id */
    PGS_SCHEMAREG_UNAVAILABLE = -1, /* no answer, a 5xx, 401/403, or a backoff after one */
    PGS_SCHEMAREG_INVALID = -2,     /* an answer that is not a registry's */
} pgs_schemareg_rc_t;

/** @brief A client for @p opts (strings are copied). NULL on a bad URL. */
pgs_schemareg_t *pgs_schemareg_new(const pgs_schemareg_opts_t *opts, char *errstr,
                                   size_t errstr_size);
void pgs_schemareg_free(pgs_schemareg_t *reg);

/**
 * @brief The schema text of @p id: from the cache, else from the registry.
 * @param[out] schema the schema's JSON text, owned by @p reg (valid until
 *             pgs_schemareg_free).
 * @returns a pgs_schemareg_rc_t; @p errstr says why when not OK (it names
 *          the id and the HTTP status, never credentials).
 */
pgs_schemareg_rc_t pgs_schemareg_get(pgs_schemareg_t *reg, int32_t id, const char **schema,
                                     char *errstr, size_t errstr_size);
/**
 * @brief Registers @p schema_json (Avro) under @p subject, or finds it
 *        there; @p *id is the registry's id for it. Bypasses the backoff.
 */
pgs_schemareg_rc_t pgs_schemareg_register(pgs_schemareg_t *reg, const char *subject,
                                          const char *schema_json, int32_t *id, char *errstr,
                                          size_t errstr_size);
/** @returns 1 while the last request failed for the registry being away. */
int pgs_schemareg_down(const pgs_schemareg_t *reg);
/** @brief Look-ups answered by the registry (not the cache), and failed ones. */
uint64_t pgs_schemareg_fetches(const pgs_schemareg_t *reg);
uint64_t pgs_schemareg_failures(const pgs_schemareg_t *reg);

#endif
