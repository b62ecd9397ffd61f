/* `pgscribe profile`: reads a running worker's statement profiles (HTTP
 * /profile) and prints one row per statement shape, the dearest first. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/httpget.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: pgscribe profile [--url URL | -c FILE] [--json] [--timeout-ms N] [--help]\n"
                "Prints a running worker's statement profiles, one row per statement shape.\n"
                "\n"
                "Reads /profile from the worker's HTTP endpoint (default: the config's\n"
                "http.listen) and sorts the shapes by total time in the pipeline. Columns:\n"
                "shape (stream/entity/op/form), calls, rows, p50/p99/max ms since start,\n"
                "p99 of the last window, errors, EXPLAINs and the time of the last one.\n"
                "\n"
                "options:\n"
                "  -u, --url URL        endpoint, http://HOST:PORT[/profile]\n"
                "  -c, --config FILE    configuration file (its http.listen)\n"
                "      --json           print the answer as it came\n"
                "      --timeout-ms N   give up after N ms (5000)\n"
                "  -h, --help           show this help\n"
                "\n"
                "exit codes:\n"
                "  0  ok\n"
                "  1  runtime failure (no answer, not a profile)\n"
                "  2  bad arguments\n"
                "  3  invalid configuration (no http.listen)\n");
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static int by_total_desc(const void *a, const void *b)
{
    double x = num(*(json_t *const *)a, "total_ms"), y = num(*(json_t *const *)b, "total_ms");
    return x < y ? 1 : x > y ? -1 : 0;
}

static void print_table(json_t *root)
{
    json_t *shapes = json_object_get(root, "shapes");
    size_t n = json_array_size(shapes);
    json_t **v = calloc(n + 1, sizeof(*v));
    if (!v)
        abort();
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(shapes, i);
    qsort(v, n, sizeof(*v), by_total_desc);
    printf("worker %s: %zu shape(s), window %lld ms, slow p99 %lld ms, %lld EXPLAIN(s)\n",
           json_string_value(json_object_get(root, "worker")), n,
           (long long)json_integer_value(json_object_get(root, "window_ms")),
           (long long)json_integer_value(json_object_get(root, "slow_p99_ms")),
           (long long)json_integer_value(json_object_get(root, "explains")));
    printf("%-44s %9s %9s %9s %9s %9s %9s %10s %6s %8s  %s\n", "SHAPE", "CALLS", "ROWS", "TOTAL_MS",
           "P50_MS", "P99_MS", "MAX_MS", "WIN_P99_MS", "ERRORS", "EXPLAINS", "LAST_EXPLAIN");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = v[i];
        char shape[128], win[24] = "-";
        snprintf(shape, sizeof(shape), "%s/%s/%s/%s",
                 json_string_value(json_object_get(o, "stream")),
                 json_string_value(json_object_get(o, "entity")),
                 json_string_value(json_object_get(o, "op")),
                 json_string_value(json_object_get(o, "form")));
        if (json_is_number(json_object_get(o, "window_p99_ms")))
            snprintf(win, sizeof(win), "%.2f", num(o, "window_p99_ms"));
        const char *last = json_string_value(json_object_get(o, "last_explain"));
        printf("%-44s %9lld %9lld %9.1f %9.2f %9.2f %9.2f %10s %6lld %8lld  %s\n", shape,
               (long long)json_integer_value(json_object_get(o, "executions")),
               (long long)json_integer_value(json_object_get(o, "rows")), num(o, "total_ms"),
               num(o, "p50_ms"), num(o, "p99_ms"), num(o, "max_ms"), win,
               (long long)json_integer_value(json_object_get(o, "errors")),
               (long long)json_integer_value(json_object_get(o, "explains")), last ? last : "-");
    }
    free(v);
}

int pgs_cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'}, {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},      {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},      {0}};
    const char *url = NULL, *path = NULL;
    int raw = 0;
    long timeout_ms = 5000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "u:c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 'j':
            raw = 1;
            break;
        case 't':
            timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return PGS_EXIT_OK;
        default:
            usage(stderr);
            return PGS_EXIT_USAGE;
        }
    }
    if (optind < argc || timeout_ms <= 0) {
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    char listen[300];
    if (!url) {
        pgs_config_t *cfg = pgs_cli_load_config(path);
        if (!cfg)
            return PGS_EXIT_CONFIG;
        snprintf(listen, sizeof(listen), "%s", pgs_config_str(cfg, "http.listen"));
        pgs_config_free(cfg);
        if (!listen[0]) {
            fprintf(stderr, "pgscribe profile: http.listen is empty: give --url\n");
            return PGS_EXIT_CONFIG;
        }
        size_t n = strlen(listen);
        if (n >= 2 && strcmp(listen + n - 2, ":0") == 0) {
            fprintf(stderr,
                    "pgscribe profile: http.listen %s has port 0, picked at start: give "
                    "--url with the port the worker's start line names\n",
                    listen);
            return PGS_EXIT_CONFIG;
        }
        url = listen;
    }
    char host[256], upath[512];
    int port;
    if (pgs_httpget_parse_url(url, "/profile", host, sizeof(host), &port, upath, sizeof(upath)) !=
        0) {
        fprintf(stderr, "pgscribe profile: '%s' is not http://HOST:PORT[/PATH]\n", url);
        return PGS_EXIT_USAGE;
    }
    /* a wildcard listen address is reached on loopback */
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "::1");
    char errstr[512], *body = NULL;
    int status = pgs_httpget(host, port, upath, (int)timeout_ms, &body, errstr, sizeof(errstr));
    if (status != 200) {
        if (status < 0)
            fprintf(stderr, "pgscribe profile: %s\n", errstr);
        else
            fprintf(stderr, "pgscribe profile: %s:%d%s answered HTTP %d\n", host, port, upath,
                    status);
        free(body);
        return PGS_EXIT_FAILURE;
    }
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    if (!root || !json_is_array(json_object_get(root, "shapes"))) {
        fprintf(stderr, "pgscribe profile: the answer is not a statement profile\n");
        json_decref(root);
        free(body);
        return PGS_EXIT_FAILURE;
    }
    if (raw)
        fputs(body, stdout);
    else
        print_table(root);
    json_decref(root);
    free(body);
    return PGS_EXIT_OK;
}
