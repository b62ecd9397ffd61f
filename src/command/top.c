/* `pgscribe top`: a live view of the workers from the metrics topic, like
 * top(1). It starts from the last records of each partition (so every
 * worker has a row at once), then follows the topic and redraws the screen
 * in place with ANSI clear/home: one row per worker from its newest record,
 * then the busiest clinics of those records. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "command/metricsread.h"
#include "common/cli.h"
#include "common/config.h"

static volatile sig_atomic_t top_stop;

static void on_stop(int sig)
{
    (void)sig;
    top_stop = 1;
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: pgscribe top [-c FILE] [-b BROKERS] [--once] [--refresh-ms N] [--clinics N]\n"
            "                    [--timeout-ms N] [--help]\n"
            "Shows the workers and the busiest clinics from the metrics topic, refreshed.\n"
            "\n"
            "One row per worker from its newest WorkerMetrics record: applied/s, consumer\n"
            "lag, transactions in flight and the limit, commit p99, breaker, dead letters\n"
            "of the interval. A worker not heard from for 3 of its intervals is marked\n"
            "stale. Below, the clinics of the live workers' records by database time.\n"
            "q or Ctrl-C quits and restores the terminal.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    configuration file\n"
            "  -b, --brokers LIST   bootstrap servers (default: config, $PGSCRIBE_KAFKA)\n"
            "      --once           print one screen (without clearing) and exit\n"
            "      --refresh-ms N   redraw every N ms (1000)\n"
            "      --clinics N      clinics shown (10)\n"
            "      --timeout-ms N   give up after N ms without reaching the end (30000)\n"
            "  -h, --help           show this help\n"
            "\n"
            "exit codes:\n"
            "  0  ok\n"
            "  2  bad arguments\n"
            "  3  invalid configuration\n"
            "  5  Kafka error or time-out\n");
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t ival(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static double dval(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static int stale(const json_t *rec, int64_t now)
{
    int64_t len = ival(rec, "interval_end") - ival(rec, "interval_start");
    return now - ival(rec, "interval_end") > 3 * (len > 0 ? len : 1000);
}

typedef struct {
    const char *id;
    int64_t applied, db_time_us;
} clinic_row_t;

static int by_db_time(const void *a, const void *b)
{
    const clinic_row_t *x = a, *y = b;
    if (x->db_time_us != y->db_time_us)
        return x->db_time_us < y->db_time_us ? 1 : -1;
    return x->applied < y->applied ? 1 : x->applied > y->applied ? -1 : 0;
}

static void clinics(json_t *newest, int64_t now, int max)
{
    size_t n = 0, cap = 64;
    clinic_row_t *rows = malloc(cap * sizeof(*rows));
    if (!rows)
        abort();
    const char *wid;
    json_t *rec;
    json_object_foreach(newest, wid, rec)
    {
        if (stale(rec, now))
            continue;
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(rec, "clinics"), k, c)
        {
            const char *id = json_string_value(json_object_get(c, "clinic_id"));
            if (!id)
                continue;
            size_t i = 0;
            while (i < n && strcmp(rows[i].id, id) != 0)
                i++;
            if (i == n) {
                if (n == cap) {
                    cap *= 2;
                    rows = realloc(rows, cap * sizeof(*rows));
                    if (!rows)
                        abort();
                }
                rows[n++] = (clinic_row_t){.id = id};
            }
            rows[i].applied += ival(c, "applied");
            rows[i].db_time_us += ival(c, "db_time_us");
        }
    }
    qsort(rows, n, sizeof(*rows), by_db_time);
    printf("\n%-40s %12s %12s\n", "CLINIC", "APPLIED", "DB_MS");
    for (size_t i = 0; i < n && (int)i < max; i++)
        printf("%-40.40s %12lld %12.1f\n", rows[i].id, (long long)rows[i].applied,
               (double)rows[i].db_time_us / 1000.0);
    if (n == 0)
        printf("(no clinic in the live workers' last interval)\n");
    free(rows);
}

static void draw(json_t *newest, int clear, int max_clinics)
{
    int64_t now = now_ms();
    if (clear)
        fputs("\033[H\033[2J", stdout);
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("pgscribe top - %s - %zu worker(s)\n\n", ts, json_object_size(newest));
    printf("%-32s %-6s %10s %9s %9s %6s %13s %-9s %6s %6s\n", "WORKER", "STATE", "APPLIED/S", "LAG",
           "IN_FLIGHT", "LIMIT", "COMMIT_P99_MS", "BREAKER", "DLQ", "AGE_S");
    const char *wid;
    json_t *rec;
    json_object_foreach(newest, wid, rec)
    {
        double secs = (double)(ival(rec, "interval_end") - ival(rec, "interval_start")) / 1000.0;
        double rate = secs > 0 ? (double)ival(rec, "applied") / secs : 0;
        const char *breaker = json_string_value(json_object_get(rec, "breaker_state"));
        printf("%-32.32s %-6s %10.1f %9lld %9lld %6lld %13.2f %-9s %6lld %6.0f\n", wid,
               stale(rec, now) ? "stale" : "live", rate, (long long)ival(rec, "consumer_lag"),
               (long long)ival(rec, "in_flight_transactions"),
               (long long)ival(rec, "in_flight_limit"),
               dval(json_object_get(rec, "commit_latency_ms"), "p99"), breaker ? breaker : "-",
               (long long)ival(rec, "dead_lettered"),
               (double)(now - ival(rec, "interval_end")) / 1000.0);
    }
    if (json_object_size(newest) == 0)
        printf("(no WorkerMetrics record yet)\n");
    clinics(newest, now, max_clinics);
    if (clear)
        printf("\nq quits\n");
    fflush(stdout);
}

/* One record in: its worker's row is the newest record of that worker. */
static void take(json_t *newest, char *json)
{
    json_t *rec = json_loads(json, 0, NULL);
    if (rec)
        pgs_metricsread_keep_newest(newest, rec);
    free(json);
}

/* A key pressed on the terminal: 'q' quits. */
static void read_keys(int tty)
{
    if (!tty)
        return;
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    while (poll(&pfd, 1, 0) > 0) {
        char ch;
        if (read(STDIN_FILENO, &ch, 1) != 1)
            return;
        if (ch == 'q' || ch == 'Q' || ch == 3)
            top_stop = 1;
    }
}

int pgs_cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"brokers", required_argument, NULL, 'b'},
        {"once", no_argument, NULL, 'o'},          {"refresh-ms", required_argument, NULL, 'r'},
        {"clinics", required_argument, NULL, 'n'}, {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},          {0}};
    const char *path = NULL, *brokers = NULL;
    int once = 0;
    long refresh_ms = 1000, max_clinics = 10, timeout_ms = 30000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:b:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'b':
            brokers = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'r':
            refresh_ms = strtol(optarg, NULL, 10);
            break;
        case 'n':
            max_clinics = strtol(optarg, NULL, 10);
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
    if (optind < argc || refresh_ms < 100 || max_clinics < 0 || timeout_ms <= 0) {
        usage(stderr);
        return PGS_EXIT_USAGE;
    }
    pgs_config_t *cfg = pgs_cli_load_config(path);
    if (!cfg)
        return PGS_EXIT_CONFIG;
    char errstr[512];
    pgs_metricsread_t *r =
        pgs_metricsread_open(cfg, brokers, PGS_METRICSREAD_TAIL, errstr, sizeof(errstr));
    pgs_config_free(cfg);
    if (!r) {
        fprintf(stderr, "pgscribe top: %s\n", errstr);
        return PGS_EXIT_KAFKA;
    }
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    json_t *newest = json_object();
    int rc = PGS_EXIT_OK;
    /* catch up: every worker's newest record before the first screen */
    int eofs = 0, nparts = pgs_metricsread_partitions(r);
    int64_t deadline = now_ms() + timeout_ms;
    while (!top_stop && eofs < nparts) {
        char *json = NULL;
        pgs_metricsread_ev_t ev = pgs_metricsread_next(r, 100, &json);
        if (ev == PGS_METRICSREAD_RECORD)
            take(newest, json);
        else if (ev == PGS_METRICSREAD_EOF)
            eofs++;
        else if (now_ms() > deadline) {
            fprintf(stderr, "pgscribe top: timed out before the end of the metrics topic\n");
            rc = PGS_EXIT_KAFKA;
            break;
        }
    }
    if (once || rc != PGS_EXIT_OK) {
        if (rc == PGS_EXIT_OK)
            draw(newest, 0, (int)max_clinics);
        json_decref(newest);
        pgs_metricsread_close(r);
        return rc;
    }
    /* the terminal: keys without Enter, no echo, no cursor; restored on the way out */
    int tty = isatty(STDIN_FILENO);
    struct termios saved;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    } else {
        tty = 0;
    }
    fputs("\033[?25l", stdout);
    int64_t next_draw = 0;
    while (!top_stop) {
        if (now_ms() >= next_draw) {
            draw(newest, 1, (int)max_clinics);
            next_draw = now_ms() + refresh_ms;
        }
        char *json = NULL;
        if (pgs_metricsread_next(r, 100, &json) == PGS_METRICSREAD_RECORD)
            take(newest, json);
        else
            free(json);
        read_keys(tty);
    }
    fputs("\033[?25h\n", stdout);
    fflush(stdout);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    json_decref(newest);
    pgs_metricsread_close(r);
    return PGS_EXIT_OK;
}
