/* Unit tests: the HTTP client's URL parsing and a GET against a local
 * one-shot server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/httpget.h"

static void test_parse_url(void **state)
{
    (void)state;
    char host[64], path[64];
    int port = 0;
    assert_int_equal(pgs_httpget_parse_url("http://127.0.0.1:9464/profile", "/x", host,
                                           sizeof(host), &port, path, sizeof(path)),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_string_equal(path, "/profile");
    assert_int_equal(pgs_httpget_parse_url("[::1]:80", "/profile", host, sizeof(host), &port, path,
                                           sizeof(path)),
                     0);
    assert_string_equal(host, "::1");
    assert_string_equal(path, "/profile");
    static const char *const bad[] = {
        "", "http://", "127.0.0.1", "127.0.0.1:", "h:0", "h:70000", "[::1]80", "h:12x/p"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            pgs_httpget_parse_url(bad[i], "/", host, sizeof(host), &port, path, sizeof(path)), -1);
}

static int listener;
static char request[512];

static void *serve_once(void *arg)
{
    (void)arg;
    int c = accept(listener, NULL, NULL);
    ssize_t n = read(c, request, sizeof(request) - 1);
    request[n > 0 ? n : 0] = '\0';
    const char *answer = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}\n";
    ssize_t w = write(c, answer, strlen(answer));
    (void)w;
    close(c);
    return NULL;
}

static void test_get(void **state)
{
    (void)state;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(listener, 1), 0);
    socklen_t len = sizeof(sa);
    getsockname(listener, (struct sockaddr *)&sa, &len);
    pthread_t t;
    pthread_create(&t, NULL, serve_once, NULL);
    char *body = NULL, err[256];
    int status =
        pgs_httpget("127.0.0.1", ntohs(sa.sin_port), "/profile", 5000, &body, err, sizeof(err));
    pthread_join(t, NULL);
    close(listener);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{\"a\": 1}\n");
    assert_non_null(strstr(request, "GET /profile HTTP/1.0\r\n"));
    free(body);
    /* nobody listens there now */
    assert_int_equal(
        pgs_httpget("127.0.0.1", ntohs(sa.sin_port), "/", 2000, &body, err, sizeof(err)), -1);
    assert_null(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse_url),
                                       cmocka_unit_test(test_get)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
