/* The settings table: every key's name, type, default, bounds, reloadability and help. */
#include "common/config_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cfg_def_t pgs_config_table[] = {
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
    CF_STR("topic.traces", "pgscribe.traces", 0,
           "Topic receiving the worker's spans, batched, as OTLP/JSON ExportTraceServiceRequest "
           "messages (an OpenTelemetry Collector reads it with its kafka receiver, encoding "
           "otlp_json)."),
    CF_STR_ENV("pg.conninfo", "", 0, "PGSCRIBE_PG_CONNINFO",
               "libpq connection string or URI (empty uses the PG* environment variables); the "
               "environment variable overrides it and is the preferred place for a password."),
    CF_STR("pg.schema", "clinic", 0,
           "Schema introspected for entities: tables with a clinic_id column, a primary key "
           "and row-level security."),
    CF_INT("pg.connect_timeout_ms", "5000", 100, 600000, 0,
           "Time a database connection may take to open, setup included, before it is abandoned "
           "and retried with backoff (connect_timeout in pg.conninfo wins)."),
    CF_INT("pg.keepalives_idle_s", "30", 1, 7200, 0,
           "TCP keepalive idle time of every database connection, in seconds, unless "
           "pg.conninfo sets keepalives_idle."),
    CF_INT("pg.keepalives_interval_s", "10", 1, 600, 0,
           "Interval between TCP keepalive probes, in seconds, unless pg.conninfo sets "
           "keepalives_interval."),
    CF_INT("pg.keepalives_count", "3", 1, 100, 0,
           "Unanswered TCP keepalive probes after which a database connection is dead, unless "
           "pg.conninfo sets keepalives_count."),
    CF_INT("pg.tcp_user_timeout_ms", "30000", 0, 3600000, 0,
           "TCP_USER_TIMEOUT of database connections: data unacknowledged this long breaks it (0: "
           "system default), unless pg.conninfo sets tcp_user_timeout."),
    CF_INT("pg.idle_in_transaction_timeout_ms", "60000", 0, 3600000, 0,
           "idle_in_transaction_session_timeout of pgscribe sessions: a backend whose worker "
           "vanished mid-transaction frees its row locks (0: the server's setting)."),
    CF_BOOL("pg.generic_plans", "true", 0,
            "pgscribe sessions run with plan_cache_mode = force_generic_plan: each prepared "
            "statement shape is planned once per connection rather than at each of its first "
            "executions (its rows arrive as array parameters, whose values a custom plan gains "
            "nothing from); false leaves the server's setting. Options in pg.conninfo win."),
    CF_INT("apply.max_in_flight", "50", 1, 500, 0,
           "Maximum concurrent transactions, which is also the number of PostgreSQL "
           "connections."),
    CF_BOOL("apply.adaptive_in_flight", "true", 0,
            "Adapt the number of concurrent transactions, between 2 and apply.max_in_flight, to "
            "the one that commits the most commands per second (starting at 2); false keeps "
            "apply.max_in_flight."),
    CF_INT("apply.max_batch", "200", 1, 1000, 0, "Maximum commands grouped into one transaction."),
    CF_INT("apply.backlog_max", "20000", 100, 1000000, 0,
           "Decoded commands buffered in memory before fetching from Kafka pauses."),
    CF_INT("apply.max_statements", "4096", 4, 60000, 0,
           "Statement shapes kept prepared; beyond this the least recently used is deallocated "
           "on every connection and its SQL freed. A load with more shapes in use than this "
           "(each partial-UPDATE column set sent alone is one) re-prepares on every eviction; "
           "each prepared shape costs each connection's backend some 30-40 KB."),
    CF_INT("apply.multi_row_min", "2", 2, 1000, CF_RELOAD,
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
    CF_INT("retry.max_attempts", "0", 0, 100000, CF_RELOAD,
           "Upper bound of a command's attempts on transient database errors before a db-transient "
           "dead letter (0: none; retry.max_elapsed_ms bounds them)."),
    CF_INT("retry.max_elapsed_ms", "600000", 1000, 86400000, CF_RELOAD,
           "Retry time budget, from its first failure, of a command hit by transient errors "
           "(40001, 40P01, 55P03, 57014...); then it is dead-lettered as db-transient."),
    CF_INT("retry.backoff_initial_ms", "100", 1, 60000, CF_RELOAD,
           "First delay before retrying a transient database error; it doubles, with jitter, "
           "on each attempt."),
    CF_INT("retry.backoff_max_ms", "30000", 10, 600000, CF_RELOAD,
           "Upper bound of the delay between retries of a transient error."),
    CF_DBL("limits.clinic_rate", "0", 0, 1000000, CF_RELOAD,
           "Commands per second each clinic may apply (a token bucket per clinic); a clinic "
           "over it waits in its lanes, never dropped (0: unlimited)."),
    CF_DBL("limits.clinic_burst", "0", 0, 10000000, CF_RELOAD,
           "Commands a clinic may apply at once above limits.clinic_rate: the token bucket's "
           "size (0: the rate, at least 1)."),
    CF_STR("limits.overrides", "", CF_RELOAD,
           "Clinics with a limit of their own, as clinic:rate:burst items separated by commas "
           "(e.g. clinic-007:200:400,clinic-009:50:100; burst left out is the rate)."),
    CF_INT("limits.clinic_quantum", "0", 0, 1000, CF_RELOAD,
           "Commands a clinic may take per dispatch round while other clinics have commands "
           "ready (deficit round robin); 0: a whole apply.max_batch each turn."),
    CF_STR("crypto.keyring", "", CF_RELOAD,
           "Keyring file of field and pseudonym keys (mode 0600; see docs/keys.md); empty: "
           "no keyring, PHI columns cannot be written and dead letters are stored in clear."),
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
    CF_STR("audit.retention", "7y", 0,
           "How long audit.events keeps a month: `pgscribe audit archive` archives and drops "
           "each monthly partition that ended before now minus this (a number and s, m, h, d, w "
           "or y; y is 365 days)."),
    CF_STR("audit.archive_dir", "/var/lib/pgscribe/audit-archive", 0,
           "Directory where `pgscribe audit archive` writes audit-events-YYYY-MM.csv.gz and its "
           "manifest audit-events-YYYY-MM.manifest.json."),
    CF_INT("audit.maintenance_interval_ms", "3600000", 0, 86400000, CF_RELOAD,
           "Interval between passes of the audit maintenance loop (creating the coming months' "
           "partitions, refreshing the activity views), run by one worker at a time, elected "
           "by an advisory lock; 0 turns the loop off in this worker."),
    CF_INT("audit.partitions_ahead", "3", 0, 24, CF_RELOAD,
           "Months of audit.events partitions the maintenance loop keeps ready beyond the "
           "current one."),
    CF_STR(
        "audit.anchor_topic", "pgscribe.audit.anchors", 0,
        "Topic `pgscribe audit anchor` publishes each clinic's chain head to (keyed by "
        "clinic_id) and `audit verify --anchor-topic` reads back; created by `pgscribe topics`."),
    CF_INT("catalog.refresh_ms", "2000", 0, 3600000, CF_RELOAD,
           "Interval between checks of the target schema in milliseconds: a change (a column "
           "or table added, a type or policy changed) is picked up without SIGHUP; 0 turns "
           "the periodic check off (SIGHUP and unknown columns still reload)."),
    CF_INT("catalog.unknown_column_grace_ms", "30000", 0, 3600000, CF_RELOAD,
           "Time a command naming a data column the catalog does not know waits, in its "
           "lane, for a refreshed catalog that knows it before it is dead-lettered "
           "(an expand migration and its producers need not be ordered); 0 dead-letters at "
           "once."),
    CF_INT("metrics.interval_ms", "10000", 100, 3600000, CF_RELOAD,
           "Interval between WorkerMetrics records in milliseconds."),
    CF_BOOL("metrics.per_clinic", "true", CF_RELOAD,
            "Include per-clinic counts and database time in WorkerMetrics records."),
    CF_INT("metrics.per_clinic_max", "50", 0, 100000, CF_RELOAD,
           "Clinics with series of their own on the HTTP /metrics endpoint, first seen first; "
           "the others are summed under clinic=\"other\" (a cap on label cardinality)."),
    CF_ENUM("trace.sampling", "parent", "parent|always|never", CF_RELOAD,
            "Which commands with a valid traceparent header get spans: parent (those whose "
            "sampled flag is set), always (every one), never (tracing off). pgscribe only "
            "continues traces; a command without the header gets none."),
    CF_DBL("trace.ratio", "1", 0, 1, CF_RELOAD,
           "Share of the traces trace.sampling admits that get spans, decided by the trace id "
           "(every worker and every command of one trace decide alike)."),
    CF_INT("trace.flush_ms", "1000", 10, 60000, CF_RELOAD,
           "Longest time a finished span waits before its batch is exported."),
    CF_INT("trace.batch_spans", "512", 1, 10000, CF_RELOAD,
           "Spans per export: a batch this large is exported at once."),
    CF_INT("trace.max_buffered_spans", "8192", 16, 1000000, 0,
           "Finished spans held for export at most; past it spans are dropped and counted "
           "(pgscribe_trace_spans_dropped_total)."),
    CF_STR("trace.otlp_endpoint", "", 0,
           "OTLP/HTTP traces endpoint to POST each batch to as well, e.g. "
           "http://127.0.0.1:4318/v1/traces; empty exports to topic.traces only."),
    CF_INT("trace.otlp_queue_max", "64", 1, 10000, 0,
           "Batches waiting for the OTLP/HTTP sender at most; past it a batch is dropped and "
           "its spans counted as dropped (the worker never waits for the endpoint)."),
    CF_INT("trace.otlp_timeout_ms", "5000", 100, 60000, 0, "Time one OTLP/HTTP POST may take."),
    CF_STR("schema_registry.url", "", 0,
           "Base URL of a Confluent-compatible Schema Registry, e.g. "
           "http://registry:8080/apis/ccompat/v6; when set, the schema id of every Avro command "
           "and audit event is the registry's, resolved with GET /schemas/ids/{id} (cached) and "
           "read into the current shipped schema. Empty: the shipped ids only."),
    CF_STR("schema_registry.basic_auth_user", "", 0,
           "User for HTTP basic authentication to the registry; empty sends none."),
    CF_STR_ENV("schema_registry.basic_auth_password", "", 0, "PGSCRIBE_SCHEMA_REGISTRY_PASSWORD",
               "Password for HTTP basic authentication; the environment variable overrides it "
               "and is the preferred place for it."),
    CF_STR("schema_registry.ca_location", "", 0,
           "CA certificate bundle (PEM file) that verifies an https registry; empty uses the "
           "system's."),
    CF_BOOL("schema_registry.tls_verify", "true", 0,
            "Verify an https registry's certificate and host name; turn off only for a test "
            "registry."),
    CF_INT("schema_registry.timeout_ms", "2000", 100, 60000, 0,
           "Time one registry request may take, connection included; the worker waits that "
           "long at most per look-up of a schema id it has not cached."),
    CF_INT("schema_registry.retry_max_ms", "5000", 100, 600000, 0,
           "Longest pause between look-ups while the registry is unreachable (the pause starts "
           "at 100 ms and doubles); messages of uncached ids wait meanwhile, never "
           "dead-lettered."),
    CF_STR("http.listen", "", 0,
           "Address of the HTTP endpoint (/metrics, /livez, /readyz, /status, /profile) as "
           "host:port, "
           "e.g. 127.0.0.1:9464 or [::1]:9464; empty turns it off. Bind to loopback unless a "
           "scraper elsewhere needs it: the endpoint has no authentication."),
    CF_INT("shutdown.drain_timeout_ms", "30000", 100, 600000, CF_RELOAD,
           "Time allowed on shutdown or revocation for in-flight transactions to finish "
           "before offsets are committed."),
    CF_STR("resume.window", "7d", 0,
           "Rewind window after a restore: pgscribe prune refuses to delete idempotency "
           "records younger than this (a duration: 12h, 7d, 2w). Must not exceed the Kafka "
           "retention of the commands topic."),
    CF_ENUM("log.level", "info", "debug|info|warn|error", CF_RELOAD,
            "Lowest level of log lines written to stderr."),
    CF_ENUM("log.format", "logfmt", "logfmt|json", CF_RELOAD,
            "Format of the log lines on stderr: logfmt (key=value) or json (one object per "
            "line). librdkafka's and libpq's messages are written in the same format."),
    CF_INT("log.slow_statement_ms", "1000", 0, 3600000, CF_RELOAD,
           "Transactions slower than this many milliseconds are logged with their entities and "
           "timing (0 disables it)."),
    CF_INT("profile.window_ms", "10000", 100, 3600000, CF_RELOAD,
           "Window over which each statement shape's p99 latency is judged against "
           "profile.slow_p99_ms."),
    CF_INT("profile.slow_p99_ms", "1000", 0, 3600000, CF_RELOAD,
           "A statement shape whose p99 over a window reaches this many milliseconds gets one "
           "EXPLAIN (ANALYZE, BUFFERS) of a sample execution, logged at warn with a generic plan "
           "(0 disables it)."),
    CF_INT("profile.explain_interval_s", "300", 1, 86400, CF_RELOAD,
           "Least time between two EXPLAINs of one statement shape; one EXPLAIN runs at a time."),
    CF_INT("profile.explain_timeout_ms", "5000", 100, 600000, CF_RELOAD,
           "statement_timeout and lock_timeout of an EXPLAIN on its side connection."),
    CF_ENUM("produce.encoding", "avro", "avro|json", 0,
            "Encoding of the messages written by pgscribe produce."),
};

const size_t pgs_config_table_len = sizeof(pgs_config_table) / sizeof(pgs_config_table[0]);

/* The table's entries by name, sorted once: the event loop reads settings
 * by name several times a step, and a scan compared ~100 names each time. */
static int by_name[sizeof(pgs_config_table) / sizeof(pgs_config_table[0])];
static pthread_once_t by_name_once = PTHREAD_ONCE_INIT;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(pgs_config_table[*(const int *)a].name, pgs_config_table[*(const int *)b].name);
}

static void sort_by_name(void)
{
    for (size_t i = 0; i < pgs_config_table_len; i++)
        by_name[i] = (int)i;
    qsort(by_name, pgs_config_table_len, sizeof(by_name[0]), cmp_entry);
}

int pgs_config_table_find(const char *name)
{
    pthread_once(&by_name_once, sort_by_name);
    size_t lo = 0, hi = pgs_config_table_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(pgs_config_table[by_name[mid]].name, name);
        if (c == 0)
            return by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void pgs_config_table_range(const cfg_def_t *def, char *buf, size_t size)
{
    if (def->type == CT_INT)
        snprintf(buf, size, "%lld..%lld", (long long)def->min, (long long)def->max);
    else
        snprintf(buf, size, "%.15g..%.15g", def->min, def->max);
}

const char *pgs_config_table_type_name(cfg_type_t type)
{
    static const char *const names[] = {"string", "int", "double", "bool", "enum"};
    return names[type];
}
