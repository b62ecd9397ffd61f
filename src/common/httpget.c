/* Blocking HTTP/1.0 GET (see httpget.h): connect, one request, read to EOF,
 * split the status line and headers from the body. */
#include "common/httpget.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/sbuf.h"

int pgs_httpget_parse_url(const char *url, const char *default_path, char *host, size_t host_size,
                          int *port, char *path, size_t path_size)
{
    if (strncmp(url, "http://", 7) == 0)
        url += 7;
    const char *slash = strchr(url, '/');
    size_t alen = slash ? (size_t)(slash - url) : strlen(url);
    char addr[300];
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, url, alen);
    addr[alen] = '\0';
    const char *hs = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        hs = addr + 1;
        hlen = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - addr);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= host_size || colon[1] == '\0' || *end || p <= 0 || p > 65535)
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    snprintf(path, path_size, "%s", slash ? slash : default_path);
    return 0;
}

/* Waits for @p events on @p fd until @p deadline_ms. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    int64_t left = deadline_ms - pgs_clock_now_ms();
    if (left <= 0)
        return -1;
    struct pollfd pfd = {.fd = fd, .events = events};
    int n = poll(&pfd, 1, (int)left);
    return n > 0 ? 0 : -1;
}

static int dial(const char *host, int port, int64_t deadline_ms, char *errstr, size_t errstr_size)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        int err = 0;
        socklen_t len = sizeof(err);
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline_ms) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            snprintf(errstr, errstr_size, "cannot connect to %s:%d: %s", host, port,
                     strerror(err     ? err
                              : errno ? errno
                                      : ETIMEDOUT));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

int pgs_httpget(const char *host, int port, const char *path, int timeout_ms, char **body,
                char *errstr, size_t errstr_size)
{
    int64_t deadline = pgs_clock_now_ms() + timeout_ms;
    *body = NULL;
    snprintf(errstr, errstr_size, "cannot connect to %s:%d", host, port);
    int fd = dial(host, port, deadline, errstr, errstr_size);
    if (fd < 0)
        return -1;
    char req[1200];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                 path, host, port);
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0)
            continue;
        if (w <= 0) {
            snprintf(errstr, errstr_size, "send: %s", strerror(errno));
            close(fd);
            return -1;
        }
        off += (int)w;
    }
    pgs_sbuf_t sb = {0};
    for (;;) {
        char buf[8192];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0) {
            pgs_sbuf_putn(&sb, buf, (size_t)r);
            continue;
        }
        if (r == 0)
            break;
        if (errno == EAGAIN && wait_fd(fd, POLLIN, deadline) == 0)
            continue;
        snprintf(errstr, errstr_size, "%s", errno == EAGAIN ? "timed out" : strerror(errno));
        close(fd);
        free(sb.buf);
        return -1;
    }
    close(fd);
    int status = 0;
    char *hdr_end = sb.buf ? strstr(sb.buf, "\r\n\r\n") : NULL;
    if (!hdr_end || sscanf(sb.buf, "HTTP/%*d.%*d %d", &status) != 1) {
        snprintf(errstr, errstr_size, "not an HTTP answer");
        free(sb.buf);
        return -1;
    }
    hdr_end += 4;
    size_t blen = sb.len - (size_t)(hdr_end - sb.buf);
    memmove(sb.buf, hdr_end, blen);
    sb.buf[blen] = '\0';
    *body = sb.buf;
    return status;
}
