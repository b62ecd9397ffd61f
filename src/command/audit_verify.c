/* Audit verify, one clinic: streams its rows through COPY TO STDOUT (binary),
 * recomputes each link, and compares the end with the chain head. */
#include "command/audit_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auditchain.h"
#include "common/sbuf.h"

/* 22 canonical fields, then prev_hash and hash */
#define VERIFY_NCOLS (PGS_AUDITCHAIN_NFIELDS + 2)

/* Binary COPY: no text rendering of timestamps, uuids and hashes on the
 * server, and no unescaping here; the canonical text is made below. */
static const char *const SQL_COPY_HEAD =
    "COPY (SELECT clinic_id, seq, kind, event_id, command_id, occurred_at, recorded_at, actor,"
    " action, entity, row_key, columns, outcome, recipient, purpose, description, source,"
    " details, source_topic, source_partition, source_offset, traceparent, prev_hash, hash"
    " FROM audit.events WHERE clinic_id = ";

/* PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC. */
#define PG_EPOCH_OFFSET_US 946684800000000LL

static const char hexdigits[] = "0123456789abcdef";

static void hex(const uint8_t *b, char out[65])
{
    for (int i = 0; i < PGS_AUDITCHAIN_HASH_SIZE; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[64] = '\0';
}

static int64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static int32_t be32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static int unhex(const char *s, size_t len, uint8_t out[PGS_AUDITCHAIN_HASH_SIZE])
{
    if (len != 2 * PGS_AUDITCHAIN_HASH_SIZE)
        return -1;
    for (int i = 0; i < PGS_AUDITCHAIN_HASH_SIZE; i++) {
        const char *hi = memchr(hexdigits, s[2 * i], 16), *lo = memchr(hexdigits, s[2 * i + 1], 16);
        if (!hi || !lo)
            return -1;
        out[i] = (uint8_t)((hi - hexdigits) << 4 | (lo - hexdigits));
    }
    return 0;
}

typedef struct {
    pgs_audit_verify_result_t *out;
    int started;
    int64_t last_seq;
    uint8_t last_hash[PGS_AUDITCHAIN_HASH_SIZE];
    int64_t events;
    int trusted_start; /* --from: the first row's prev_hash is the boundary */
    int at_boundary;   /* the next row is the first after an archived boundary */
    int header_seen;
    pgs_auditchain_row_t row;
    pgs_sbuf_t scratch;
} verify_state_t;

static void broken(verify_state_t *st, int64_t seq, const char *what, const uint8_t *expected,
                   const uint8_t *found)
{
    pgs_audit_verify_result_t *r = st->out;
    r->broken = 1;
    r->broken_seq = seq;
    snprintf(r->what, sizeof(r->what), "%s", what);
    if (expected)
        hex(expected, r->expected);
    else
        snprintf(r->expected, sizeof(r->expected), "-");
    if (found)
        hex(found, r->found);
    else
        snprintf(r->found, sizeof(r->found), "-");
}

/* Each field's canonical text: text as it is, numbers in decimal, uuids in
 * their canonical form, timestamps as microseconds since the Unix epoch. */
typedef struct {
    char num[PGS_AUDITCHAIN_NFIELDS][40];
} verify_text_t;

static int field_text(int col, const unsigned char *p, int32_t len, verify_text_t *t,
                      pgs_auditchain_field_t *f)
{
    f->ptr = NULL;
    f->len = 0;
    if (len < 0)
        return 0;
    char *n = t->num[col];
    switch (col) {
    case PGS_AUDITCHAIN_SEQ:
    case PGS_AUDITCHAIN_SOURCE_OFFSET:
        if (len != 8)
            return -1;
        f->len = (size_t)snprintf(n, 40, "%lld", (long long)be64(p));
        break;
    case PGS_AUDITCHAIN_SOURCE_PARTITION:
        if (len != 4)
            return -1;
        f->len = (size_t)snprintf(n, 40, "%d", be32(p));
        break;
    case PGS_AUDITCHAIN_OCCURRED_US:
    case PGS_AUDITCHAIN_RECORDED_US:
        if (len != 8)
            return -1;
        f->len = (size_t)snprintf(n, 40, "%lld", (long long)(be64(p) + PG_EPOCH_OFFSET_US));
        break;
    case PGS_AUDITCHAIN_EVENT_ID:
    case PGS_AUDITCHAIN_COMMAND_ID:
        if (len != 16)
            return -1;
        for (int i = 0, o = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                n[o++] = '-';
            n[o++] = hexdigits[p[i] >> 4];
            n[o++] = hexdigits[p[i] & 15];
        }
        f->len = 36;
        break;
    default:
        f->ptr = (const char *)p;
        f->len = (size_t)len;
        return 0;
    }
    f->ptr = n;
    return 0;
}

/* A one-dimensional text[] in binary: ndim, has-null flag, element type,
 * (size, lower bound) per dimension, then each element as length + bytes. */
static int columns_binary(const unsigned char *p, int32_t len, pgs_auditchain_row_t *row)
{
    if (len < 0) {
        row->ncolumns = -1;
        return 0;
    }
    if (len < 12)
        return -1;
    int32_t ndim = be32(p);
    row->ncolumns = 0;
    if (ndim == 0)
        return 0;
    if (ndim != 1 || len < 20)
        return -1;
    int32_t n = be32(p + 12);
    if (n < 0 || n > PGS_AUDITCHAIN_MAX_COLUMNS)
        return -1;
    const unsigned char *q = p + 20, *end = p + len;
    for (int i = 0; i < n; i++) {
        if (end - q < 4)
            return -1;
        int32_t el = be32(q);
        q += 4;
        if (el > end - q)
            return -1;
        row->columns[i].ptr = el < 0 ? NULL : (const char *)q;
        row->columns[i].len = el < 0 ? 0 : (size_t)el;
        q += el < 0 ? 0 : el;
    }
    row->ncolumns = n;
    return 0;
}

/* One tuple of the binary COPY: @returns 0, 1 at the trailer, -1 unreadable. */
static int parse_tuple(const unsigned char *p, size_t len, verify_text_t *t,
                       pgs_auditchain_row_t *row, const unsigned char **prev,
                       const unsigned char **stored)
{
    const unsigned char *end = p + len;
    if (len < 2)
        return -1;
    int nf = (int16_t)(p[0] << 8 | p[1]);
    if (nf == -1)
        return 1;
    if (nf != VERIFY_NCOLS)
        return -1;
    p += 2;
    for (int col = 0; col < VERIFY_NCOLS; col++) {
        if (end - p < 4)
            return -1;
        int32_t fl = be32(p);
        p += 4;
        if (fl > end - p)
            return -1;
        if (col == PGS_AUDITCHAIN_COLUMNS) {
            if (columns_binary(p, fl, row) != 0)
                return -1;
        } else if (col < PGS_AUDITCHAIN_NFIELDS) {
            if (field_text(col, p, fl, t, &row->fields[col]) != 0)
                return -1;
        } else {
            if (fl != PGS_AUDITCHAIN_HASH_SIZE)
                return -1;
            *(col == PGS_AUDITCHAIN_NFIELDS ? prev : stored) = p;
        }
        p += fl < 0 ? 0 : fl;
    }
    return 0;
}

/* Judges one row against the chain so far. */
static void verify_row(verify_state_t *st, const uint8_t *prev, const uint8_t *stored)
{
    static const uint8_t zero[PGS_AUDITCHAIN_HASH_SIZE] = {0};
    pgs_auditchain_row_t *row = &st->row;
    int64_t seq = strtoll(row->fields[PGS_AUDITCHAIN_SEQ].ptr, NULL, 10);
    const pgs_auditchain_field_t *kind = &row->fields[PGS_AUDITCHAIN_KIND];
    st->events += kind->len == 5 && memcmp(kind->ptr, "event", 5) == 0;
    if (!st->started) {
        st->started = 1;
        if (!st->trusted_start && seq != 1) {
            broken(st, 1, "the chain does not start at seq 1", zero, prev);
            return;
        }
        if (!st->trusted_start && memcmp(prev, zero, sizeof(zero)) != 0) {
            broken(st, seq, "seq 1's prev_hash is not 32 zero bytes", zero, prev);
            return;
        }
    } else if (st->at_boundary && (seq != st->last_seq + 1 ||
                                   memcmp(prev, st->last_hash, PGS_AUDITCHAIN_HASH_SIZE) != 0)) {
        char what[128];
        snprintf(what, sizeof(what),
                 seq != st->last_seq + 1
                     ? "the chain resumes at seq %lld, not after its archived boundary"
                     : "prev_hash is not the archived boundary's hash (seq %lld)",
                 seq != st->last_seq + 1 ? (long long)seq : (long long)st->last_seq);
        broken(st, seq, what, st->last_hash, prev);
        return;
    } else if (seq != st->last_seq + 1) {
        char what[96];
        snprintf(what, sizeof(what), "row missing (the next row has seq %lld)", (long long)seq);
        broken(st, st->last_seq + 1, what, st->last_hash, prev);
        return;
    } else if (memcmp(prev, st->last_hash, PGS_AUDITCHAIN_HASH_SIZE) != 0) {
        broken(st, seq, "prev_hash is not the previous row's hash", st->last_hash, prev);
        return;
    }
    uint8_t h[PGS_AUDITCHAIN_HASH_SIZE];
    if (pgs_auditchain_hash(prev, row, &st->scratch, h) != 0) {
        snprintf(st->out->error, sizeof(st->out->error), "SHA-256 failed");
        st->out->broken = 1;
        return;
    }
    if (memcmp(h, stored, sizeof(h)) != 0) {
        broken(st, seq, "hash does not match the row's content", h, stored);
        return;
    }
    st->last_seq = seq;
    st->at_boundary = 0;
    memcpy(st->last_hash, stored, sizeof(h));
}

/* The binary COPY's 19-byte header (signature, flags, no extension) comes
 * before the first tuple, in the same message. */
static const unsigned char COPY_SIGNATURE[11] = "PGCOPY\n\377\r\n";

static void verify_message(verify_state_t *st, const unsigned char *p, size_t len)
{
    if (!st->header_seen) {
        if (len < 19 || memcmp(p, COPY_SIGNATURE, 11) != 0) {
            broken(st, st->last_seq + 1, "unreadable COPY header", NULL, NULL);
            return;
        }
        int32_t ext = be32(p + 15);
        if (ext < 0 || (size_t)ext > len - 19) {
            broken(st, st->last_seq + 1, "unreadable COPY header", NULL, NULL);
            return;
        }
        st->header_seen = 1;
        p += 19 + ext;
        len -= 19 + (size_t)ext;
        if (len == 0)
            return;
    }
    verify_text_t t;
    const unsigned char *prev = NULL, *stored = NULL;
    int r = parse_tuple(p, len, &t, &st->row, &prev, &stored);
    if (r == 1)
        return;
    st->out->rows++;
    if (st->out->broken)
        return;
    if (r != 0) {
        broken(st, st->last_seq + 1, "unreadable row", NULL, NULL);
        return;
    }
    verify_row(st, prev, stored);
}

static int exec_ok(PGconn *pg, const char *sql, pgs_audit_verify_result_t *out)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(out->error, sizeof(out->error), "%s", PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

/* The head's seq and hash, and the count of recorded event ids. */
static int read_head(PGconn *pg, const char *clinic, int64_t *seq, uint8_t hash[32],
                     int64_t *event_ids, pgs_audit_verify_result_t *out)
{
    const char *params[] = {clinic};
    PGresult *res =
        PQexecParams(pg,
                     "SELECT h.seq, encode(h.hash, 'hex'),"
                     " (SELECT count(*) FROM audit.event_ids e WHERE e.clinic_id = h.clinic_id)"
                     " FROM audit.chain_heads h WHERE h.clinic_id = $1",
                     1, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        *seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        ok = unhex(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), hash) == 0;
        *event_ids = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    if (!ok)
        snprintf(out->error, sizeof(out->error), "reading the chain head: %s", PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

/* The clinic's latest archived boundary (pgscribe audit archive): the last
 * link of the newest month archived. The chain then continues from it, as if
 * it were the row before the first one left. @returns 1 found, 0 none, -1. */
static int read_boundary(PGconn *pg, const char *clinic, verify_state_t *st)
{
    const char *params[] = {clinic};
    PGresult *res = PQexecParams(pg,
                                 "SELECT seq, encode(hash, 'hex') FROM audit.archived_boundaries"
                                 " WHERE clinic_id = $1 ORDER BY seq DESC LIMIT 1",
                                 1, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : -1;
    if (rc == 1) {
        st->last_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (unhex(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), st->last_hash) != 0)
            rc = -1;
        st->started = st->at_boundary = 1;
    }
    if (rc < 0)
        snprintf(st->out->error, sizeof(st->out->error), "reading the archived boundary: %s",
                 PQerrorMessage(pg));
    PQclear(res);
    return rc;
}

static char *copy_sql(PGconn *pg, const char *clinic, const pgs_audit_verify_range_t *rg,
                      int64_t head_seq)
{
    pgs_sbuf_t sb = {0};
    pgs_sbuf_puts(&sb, SQL_COPY_HEAD);
    const char *vals[] = {clinic, rg->from, rg->to};
    const char *conds[] = {"", " AND recorded_at >= ", " AND recorded_at < "};
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        char *lit = PQescapeLiteral(pg, vals[i], strlen(vals[i]));
        if (!lit) {
            free(sb.buf);
            return NULL;
        }
        pgs_sbuf_puts(&sb, conds[i]);
        pgs_sbuf_puts(&sb, lit);
        if (i > 0)
            pgs_sbuf_puts(&sb, "::timestamptz");
        PQfreemem(lit);
    }
    /* rows appended after the head was read are not this run's */
    pgs_sbuf_printf(&sb, " AND seq <= %lld ORDER BY seq) TO STDOUT (FORMAT binary)",
                    (long long)head_seq);
    return sb.buf;
}

static int stream_rows(PGconn *pg, const char *sql, verify_state_t *st)
{
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        snprintf(st->out->error, sizeof(st->out->error), "%s", PQerrorMessage(pg));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    char *buf;
    int len;
    while ((len = PQgetCopyData(pg, &buf, 0)) > 0) {
        verify_message(st, (const unsigned char *)buf, (size_t)len);
        PQfreemem(buf);
    }
    res = PQgetResult(pg);
    int ok = len == -1 && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(st->out->error, sizeof(st->out->error), "%s", PQerrorMessage(pg));
    PQclear(res);
    while ((res = PQgetResult(pg)))
        PQclear(res);
    return ok ? 0 : -1;
}

void pgs_audit_verify_clinic(PGconn *pg, const char *clinic, const pgs_audit_verify_range_t *rg,
                             pgs_audit_verify_result_t *out)
{
    verify_state_t st = {.out = out, .trusted_start = rg->from != NULL};
    int64_t head_seq = 0, event_ids = 0;
    uint8_t head_hash[PGS_AUDITCHAIN_HASH_SIZE];
    if (exec_ok(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", out) != 0)
        return;
    char *sql = NULL;
    if (read_head(pg, clinic, &head_seq, head_hash, &event_ids, out) != 0 ||
        (!rg->from && read_boundary(pg, clinic, &st) < 0) ||
        !(sql = copy_sql(pg, clinic, rg, head_seq)) || stream_rows(pg, sql, &st) != 0)
        goto done;
    if (!out->broken && !rg->to && head_seq > 0 &&
        (head_seq != st.last_seq || memcmp(head_hash, st.last_hash, sizeof(head_hash)) != 0)) {
        char what[128];
        snprintf(what, sizeof(what), "the chain ends at seq %lld but its head is at seq %lld",
                 (long long)st.last_seq, (long long)head_seq);
        broken(&st, st.last_seq + 1, what, head_hash, st.started ? st.last_hash : NULL);
    }
    /* a tail cut together with its head is still short of recorded event ids */
    if (!out->broken && !rg->to && !rg->from && event_ids > st.events) {
        char what[128];
        snprintf(what, sizeof(what),
                 "%lld event ids recorded, %lld events in the chain: rows after it are missing",
                 (long long)event_ids, (long long)st.events);
        broken(&st, st.last_seq + 1, what, NULL, st.started ? st.last_hash : NULL);
    }
done:
    free(sql);
    free(st.scratch.buf);
    PQclear(PQexec(pg, "COMMIT"));
}
