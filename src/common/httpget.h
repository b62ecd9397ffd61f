/* Minimal blocking HTTP/1.0 GET over TCP, for subcommands that read a
 * running worker's endpoint (http.listen, loopback by advice): no TLS, no
 * redirects, no chunked encoding (HTTP/1.0 answers are not chunked). */
#ifndef PGSCRIBE_HTTPGET_H
#define PGSCRIBE_HTTPGET_H

#include <stddef.h>

/**
 * @brief Splits @p url ("http://host:port/path", "host:port/path" or
 *        "host:port"; "[v6]:port" too) into its parts; @p path defaults to
 *        @p default_path.
 * @returns 0, or -1 when it is none of these.
 */
int pgs_httpget_parse_url(const char *url, const char *default_path, char *host, size_t host_size,
                          int *port, char *path, size_t path_size);
/**
 * @brief GETs @p path from @p host:@p port within @p timeout_ms.
 * @returns the HTTP status with the body (malloc'ed, NUL-terminated) in
 *          @p *body, or -1 with the reason in @p errstr.
 */
int pgs_httpget(const char *host, int port, const char *path, int timeout_ms, char **body,
                char *errstr, size_t errstr_size);

#endif
