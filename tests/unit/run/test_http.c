/* Unit tests: the HTTP endpoint's listen address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "run/http.h"

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(pgs_http_parse_listen("127.0.0.1:9464", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(pgs_http_parse_listen("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(pgs_http_parse_listen("localhost:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "localhost");
    static const char *const bad[] = {
        "9464",      ":9464", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000",
        "[::1]9464", "[::1",  "h:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pgs_http_parse_listen(bad[i], host, sizeof(host), &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse_listen)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
