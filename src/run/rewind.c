/* Rewind after a restore (see rewind.h): the identity and the decision. */
#include "run/rewind.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SQL_IDENTITY =
    "SELECT system_identifier::text || '/' || timeline::text FROM pgscribe.db_identity()";
static const char *const SQL_RECORDED =
    "SELECT coalesce(pgscribe.recorded_position($1::text, $2::int), -1)::text";

int pgs_rewind_identity_parse(const char *text, pgs_rewind_identity_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return -1;
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : 0;
    if (n == 0 || n >= sizeof(out->system_identifier))
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((text[i] < '0' || text[i] > '9') && !(i == 0 && text[i] == '-'))
            return -1;
    char *end = NULL;
    long tli = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end || tli < 1 || tli > INT32_MAX)
        return -1;
    memcpy(out->system_identifier, text, n);
    out->timeline = (int)tli;
    return 0;
}

int pgs_rewind_identity_same(const pgs_rewind_identity_t *a, const pgs_rewind_identity_t *b)
{
    return strcmp(a->system_identifier, b->system_identifier) == 0 && a->timeline == b->timeline;
}

static const char *const SQL_CHECKPOINT =
    "SELECT pgscribe.resume_checkpoint($1::text, $2::int, $3::bigint, $4::text)";

static PGresult *one_value(PGconn *pg, const char *sql, int nparams, const char *const *values)
{
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        PQclear(res);
        return NULL;
    }
    return res;
}

void pgs_rewind_identity_format(const pgs_rewind_identity_t *id, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/%d", id->system_identifier, id->timeline);
}

int pgs_rewind_checkpoint(PGconn *pg, const char *topic, int32_t partition, int64_t next,
                          const char *identity)
{
    char part[16], off[24];
    snprintf(part, sizeof(part), "%" PRId32, partition);
    snprintf(off, sizeof(off), "%" PRId64, next);
    const char *const values[] = {topic, part, off, identity};
    PGresult *res = one_value(pg, SQL_CHECKPOINT, 4, values);
    if (!res)
        return -1;
    int rc = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return rc;
}

int pgs_rewind_identity(PGconn *pg, pgs_rewind_identity_t *out)
{
    PGresult *res = one_value(pg, SQL_IDENTITY, 0, NULL);
    if (!res)
        return -1;
    int rc = pgs_rewind_identity_parse(PQgetvalue(res, 0, 0), out);
    PQclear(res);
    return rc;
}

int pgs_rewind_recorded(PGconn *pg, const char *topic, int32_t partition, int64_t *out)
{
    char part[16];
    snprintf(part, sizeof(part), "%" PRId32, partition);
    const char *const values[] = {topic, part};
    PGresult *res = one_value(pg, SQL_RECORDED, 2, values);
    if (!res)
        return -1;
    char *end = NULL;
    const char *v = PQgetvalue(res, 0, 0);
    long long r = strtoll(v, &end, 10);
    int rc = (end == v || *end || r < -1) ? -1 : 0;
    if (rc == 0)
        *out = (int64_t)r;
    PQclear(res);
    return rc;
}

int64_t pgs_rewind_target(int64_t committed, int64_t recorded)
{
    if (committed < 0 || recorded < 0)
        return -1;
    return recorded + 1 < committed ? recorded + 1 : -1;
}

int pgs_rewind_plan(rd_kafka_t *rk, PGconn *pg, const rd_kafka_topic_partition_list_t *parts,
                    int timeout_ms, pgs_rewind_row_t *rows, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    for (int i = 0; i < c->cnt; i++)
        c->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, c, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "committed offsets: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(c);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < c->cnt; i++) {
        pgs_rewind_row_t *r = &rows[i];
        snprintf(r->topic, sizeof(r->topic), "%s", c->elems[i].topic);
        r->partition = c->elems[i].partition;
        r->committed = c->elems[i].err || c->elems[i].offset < 0 ? -1 : c->elems[i].offset;
        r->recorded = -1;
        r->target = -1;
        if (pgs_rewind_recorded(pg, r->topic, r->partition, &r->recorded) != 0) {
            snprintf(errstr, errstr_size, "recorded position of %s [%" PRId32 "]: %s", r->topic,
                     r->partition, PQerrorMessage(pg));
            rc = -1;
            break;
        }
        r->target = pgs_rewind_target(r->committed, r->recorded);
    }
    rd_kafka_topic_partition_list_destroy(c);
    return rc;
}

PGconn *pgs_rewind_connect(const char *conninfo, char *errstr, size_t errstr_size)
{
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {"10", "pgscribe-rewind", conninfo ? conninfo : "", NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        snprintf(errstr, errstr_size, "database unreachable for the rewind check");
        PQfinish(pg);
        return NULL;
    }
    return pg;
}
