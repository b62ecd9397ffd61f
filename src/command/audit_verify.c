/* Audit verify, one clinic: streams its rows through COPY TO STDOUT (text),
 * recomputes each link, and compares the end with the chain head. */
#include "command/audit_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auditchain.h"
#include "common/sbuf.h"

/* 22 canonical fields, then prev_hash and hash in hex */
#define VERIFY_NCOLS (PGS_AUDITCHAIN_NFIELDS + 2)

static const char *const SQL_COPY_HEAD =
    "COPY (SELECT clinic_id, seq, kind, event_id, command_id,"
    " (extract(epoch FROM occurred_at) * 1000000)::bigint,"
    " (extract(epoch FROM recorded_at) * 1000000)::bigint, actor, action, entity, row_key,"
    " columns, outcome, recipient, purpose, description, source, details, source_topic,"
    " source_partition, source_offset, traceparent, encode(prev_hash, 'hex'),"
    " encode(hash, 'hex') FROM audit.events WHERE clinic_id = ";

static void hex(const uint8_t *b, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < PGS_AUDITCHAIN_HASH_SIZE; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[64] = '\0';
}

static int unhex(const char *s, size_t len, uint8_t out[PGS_AUDITCHAIN_HASH_SIZE])
{
    if (len != 2 * PGS_AUDITCHAIN_HASH_SIZE)
        return -1;
    for (int i = 0; i < PGS_AUDITCHAIN_HASH_SIZE; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* COPY text format: backslash escapes, \N for NULL. Unescapes in place. */
static void copy_field(char *s, size_t len, pgs_auditchain_field_t *f)
{
    if (len == 2 && s[0] == '\\' && s[1] == 'N') {
        f->ptr = NULL;
        f->len = 0;
        return;
    }
    char *w = s;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\\' && i + 1 < len) {
            ch = s[++i];
            switch (ch) {
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'v':
                ch = '\v';
                break;
            default:
                break; /* \\ and any other escaped byte stand for themselves */
            }
        }
        *w++ = ch;
    }
    f->ptr = s;
    f->len = (size_t)(w - s);
}

typedef struct {
    pgs_audit_verify_result_t *out;
    int started;
    int64_t last_seq;
    uint8_t last_hash[PGS_AUDITCHAIN_HASH_SIZE];
    int64_t events;
    int trusted_start; /* --from: the first row's prev_hash is the boundary */
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

static void verify_line(verify_state_t *st, char *line, size_t len)
{
    static const uint8_t zero[PGS_AUDITCHAIN_HASH_SIZE] = {0};
    st->out->rows++;
    if (st->out->broken)
        return;
    char *cols[VERIFY_NCOLS];
    size_t lens[VERIFY_NCOLS];
    int n = 0;
    char *p = line, *end = line + len;
    while (n < VERIFY_NCOLS) {
        char *tab = memchr(p, '\t', (size_t)(end - p));
        char *stop = tab ? tab : end;
        cols[n] = p;
        lens[n++] = (size_t)(stop - p);
        if (!tab)
            break;
        p = tab + 1;
    }
    uint8_t prev[PGS_AUDITCHAIN_HASH_SIZE], stored[PGS_AUDITCHAIN_HASH_SIZE];
    if (n != VERIFY_NCOLS || unhex(cols[VERIFY_NCOLS - 2], lens[VERIFY_NCOLS - 2], prev) != 0 ||
        unhex(cols[VERIFY_NCOLS - 1], lens[VERIFY_NCOLS - 1], stored) != 0) {
        broken(st, st->last_seq + 1, "unreadable row", NULL, NULL);
        return;
    }
    pgs_auditchain_row_t *row = &st->row;
    for (int i = 0; i < PGS_AUDITCHAIN_NFIELDS; i++)
        copy_field(cols[i], lens[i], &row->fields[i]);
    const pgs_auditchain_field_t *cf = &row->fields[PGS_AUDITCHAIN_COLUMNS];
    if (!cf->ptr)
        row->ncolumns = -1;
    else if (pgs_auditchain_parse_array((char *)cf->ptr, cf->len, row) != 0) {
        broken(st, st->last_seq + 1, "unreadable columns array", NULL, NULL);
        return;
    }
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
    } else if (seq != st->last_seq + 1) {
        char what[96];
        snprintf(what, sizeof(what), "row missing (the next row has seq %lld)", (long long)seq);
        broken(st, st->last_seq + 1, what, st->last_hash, prev);
        return;
    } else if (memcmp(prev, st->last_hash, sizeof(prev)) != 0) {
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
    memcpy(st->last_hash, stored, sizeof(stored));
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
    pgs_sbuf_printf(&sb, " AND seq <= %lld ORDER BY seq) TO STDOUT", (long long)head_seq);
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
        verify_line(st, buf, (size_t)len - (buf[len - 1] == '\n'));
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
