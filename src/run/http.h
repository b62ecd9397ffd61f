/* HTTP endpoint: /metrics, /livez, /readyz, /status and /profile on the worker's loop. */
#ifndef PGSCRIBE_HTTP_H
#define PGSCRIBE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

typedef struct pgs_worker_s pgs_worker_t;
typedef struct pgs_http_s pgs_http_t;

/**
 * @brief Listens on @p listen ("host:port", "[v6]:port"; port 0 picks one)
 *        and registers the server's epoll descriptor in the worker's loop,
 *        tagged with the returned handle. Requests are answered on the main
 *        thread from pgs_http_serve, so handlers read the worker's state
 *        without locks.
 * @returns the server, or NULL with the reason in @p errstr.
 * @locality main thread
 */
pgs_http_t *pgs_http_start(pgs_worker_t *w, const char *listen, char *errstr, size_t errstr_size);
/** @brief Serves what is ready (the loop saw the handle's descriptor, or a
 *         tick passed). @locality main thread */
void pgs_http_serve(pgs_http_t *http);
/**
 * @brief The readiness /readyz reports: partitions assigned, Kafka reachable
 *        (run/reach.h), each pool connected with its breaker not open. Appends
 *        one `[+]`/`[-]` line per check to @p sb when not NULL.
 * @returns 1 when ready. @locality main thread
 */
int pgs_http_readiness(const pgs_worker_t *w, pgs_sbuf_t *sb);
/** @returns the partitions assigned and not being revoked, over both streams. */
int pgs_http_assigned_partitions(const pgs_worker_t *w);
/** @returns the port actually bound. */
int pgs_http_port(const pgs_http_t *http);
void pgs_http_stop(pgs_http_t *http);

/**
 * @brief Parses "host:port" or "[v6]:port" into @p host and @p port.
 * @returns 0, or -1 when it is neither.
 */
int pgs_http_parse_listen(const char *listen, char *host, size_t host_size, int *port);

#endif
