/* Audit archive files: gzip-compressed CSV of one month of audit.events and
 * its JSON manifest (see audit_archive_file.h, docs/audit.md). */
#include "command/audit_archive_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/auditchain.h"
#include "common/sbuf.h"

#define ARCHIVE_NCOLS (PGS_AUDITCHAIN_NFIELDS + 2)
#define HASH_SIZE     PGS_AUDITCHAIN_HASH_SIZE

const char *const PGS_AUDIT_ARCHIVE_COLUMNS =
    "clinic_id,seq,kind,event_id,command_id,occurred_us,recorded_us,actor,action,entity,row_key,"
    "columns,outcome,recipient,purpose,description,source,details,source_topic,source_partition,"
    "source_offset,traceparent,prev_hash,hash";

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(const char *s, uint8_t out[HASH_SIZE])
{
    if (!s || strlen(s) != 2 * HASH_SIZE)
        return -1;
    for (int i = 0; i < HASH_SIZE; i++) {
        const char *hi = memchr(hexdigits, s[2 * i], 16), *lo = memchr(hexdigits, s[2 * i + 1], 16);
        if (!hi || !lo || !s[2 * i] || !s[2 * i + 1])
            return -1;
        out[i] = (uint8_t)((hi - hexdigits) << 4 | (lo - hexdigits));
    }
    return 0;
}

static int sha256_file(const char *path, uint8_t out[HASH_SIZE])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        ok = EVP_DigestUpdate(ctx, buf, n) == 1;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return ok ? 0 : -1;
}

/* ---- CSV, as PostgreSQL's COPY writes it: an unquoted empty field is NULL */

typedef struct {
    gzFile gz;
    unsigned char buf[65536];
    int len, pos, eof, err;
    pgs_sbuf_t rec; /* the record's fields, each NUL-terminated */
    size_t off[ARCHIVE_NCOLS];
    int null[ARCHIVE_NCOLS];
    int nf;
} csv_t;

static int csv_getc(csv_t *c)
{
    if (c->pos >= c->len) {
        if (c->eof)
            return -1;
        c->len = gzread(c->gz, c->buf, sizeof(c->buf));
        c->pos = 0;
        if (c->len <= 0) {
            c->err = c->len < 0;
            c->eof = 1;
            c->len = 0;
            return -1;
        }
    }
    return c->buf[c->pos++];
}

static void csv_put(csv_t *c, int ch)
{
    char b = (char)ch;
    pgs_sbuf_putn(&c->rec, &b, 1);
}

/* @returns 1 with a record, 0 at the end, -1 malformed or unreadable. */
static int csv_record(csv_t *c)
{
    c->rec.len = 0;
    c->nf = 0;
    int ch = csv_getc(c);
    if (ch < 0)
        return c->err ? -1 : 0;
    for (;;) {
        if (c->nf == ARCHIVE_NCOLS)
            return -1;
        c->off[c->nf] = c->rec.len;
        c->null[c->nf] = 0;
        if (ch == '"') {
            for (;;) {
                ch = csv_getc(c);
                if (ch < 0)
                    return -1;
                if (ch == '"' && (ch = csv_getc(c)) != '"')
                    break;
                csv_put(c, ch);
            }
        } else {
            size_t start = c->rec.len;
            while (ch >= 0 && ch != ',' && ch != '\n') {
                csv_put(c, ch);
                ch = csv_getc(c);
            }
            c->null[c->nf] = c->rec.len == start;
        }
        csv_put(c, '\0');
        c->nf++;
        if (ch == ',') {
            ch = csv_getc(c);
            continue;
        }
        if (ch == '\n' || (ch < 0 && !c->err))
            return 1;
        return -1;
    }
}

static char *csv_field(csv_t *c, int i)
{
    return c->null[i] ? NULL : c->rec.buf + c->off[i];
}

/* ---- scanning */

static int problem(pgs_audit_archive_scan_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int problem(pgs_audit_archive_scan_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!out->problem[0])
        vsnprintf(out->problem, sizeof(out->problem), fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_seq(const char *s, int64_t *v)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*end || errno)
        return -1;
    *v = n;
    return 0;
}

static pgs_audit_archive_clinic_t *clinic_of(pgs_audit_archive_scan_t *out, const char *id,
                                             int *fresh)
{
    *fresh = 0;
    if (out->nclinics && strcmp(out->clinics[out->nclinics - 1].clinic_id, id) == 0)
        return &out->clinics[out->nclinics - 1];
    for (size_t i = 0; i + 1 < out->nclinics; i++) {
        if (strcmp(out->clinics[i].clinic_id, id) == 0)
            return NULL; /* its rows are not together */
    }
    pgs_audit_archive_clinic_t *grown =
        realloc(out->clinics, (out->nclinics + 1) * sizeof(*out->clinics));
    if (!grown)
        abort();
    out->clinics = grown;
    pgs_audit_archive_clinic_t *cl = &out->clinics[out->nclinics++];
    memset(cl, 0, sizeof(*cl));
    cl->clinic_id = strdup(id);
    *fresh = 1;
    return cl;
}

static int scan_row(csv_t *c, pgs_audit_archive_scan_t *out, pgs_auditchain_row_t *row,
                    pgs_sbuf_t *scratch)
{
    int64_t seq;
    uint8_t prev[HASH_SIZE], stored[HASH_SIZE], h[HASH_SIZE];
    const char *clinic = csv_field(c, PGS_AUDITCHAIN_CLINIC_ID);
    if (c->nf != ARCHIVE_NCOLS || !clinic ||
        parse_seq(csv_field(c, PGS_AUDITCHAIN_SEQ), &seq) != 0 ||
        from_hex(csv_field(c, PGS_AUDITCHAIN_NFIELDS), prev) != 0 ||
        from_hex(csv_field(c, PGS_AUDITCHAIN_NFIELDS + 1), stored) != 0)
        return problem(out, "row %" PRId64 ": unreadable", out->rows + 1);
    for (int i = 0; i < PGS_AUDITCHAIN_NFIELDS; i++) {
        char *f = csv_field(c, i);
        row->fields[i].ptr = f;
        row->fields[i].len = f ? strlen(f) : 0;
    }
    char *cols = csv_field(c, PGS_AUDITCHAIN_COLUMNS);
    row->ncolumns = -1;
    if (cols && pgs_auditchain_parse_array(cols, strlen(cols), row) != 0)
        return problem(out, "clinic %s seq %" PRId64 ": unreadable columns", clinic, seq);
    int fresh;
    pgs_audit_archive_clinic_t *cl = clinic_of(out, clinic, &fresh);
    if (!cl)
        return problem(out, "clinic %s: its rows are not together (seq %" PRId64 ")", clinic, seq);
    if (fresh) {
        cl->first_seq = seq;
        memcpy(cl->first_prev_hash, prev, HASH_SIZE);
    } else if (seq != cl->last_seq + 1) {
        return problem(out, "clinic %s: seq %" PRId64 " follows seq %" PRId64, clinic, seq,
                       cl->last_seq);
    } else if (memcmp(prev, cl->last_hash, HASH_SIZE) != 0) {
        return problem(out, "clinic %s seq %" PRId64 ": prev_hash is not the previous row's hash",
                       clinic, seq);
    }
    if (pgs_auditchain_hash(prev, row, scratch, h) != 0)
        return problem(out, "SHA-256 failed");
    if (memcmp(h, stored, HASH_SIZE) != 0)
        return problem(out, "clinic %s seq %" PRId64 ": hash does not match the row's content",
                       clinic, seq);
    cl->rows++;
    cl->last_seq = seq;
    memcpy(cl->last_hash, stored, HASH_SIZE);
    out->rows++;
    return 0;
}

int pgs_audit_archive_scan(const char *path, pgs_audit_archive_scan_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sha256_file(path, out->sha256) != 0)
        return problem(out, "%s: cannot read: %s", path, strerror(errno));
    csv_t *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->gz = gzopen(path, "rb");
    pgs_auditchain_row_t *row = calloc(1, sizeof(*row));
    pgs_sbuf_t scratch = {0};
    int rc = -1;
    if (!c->gz || !row) {
        problem(out, "%s: cannot open", path);
        goto done;
    }
    int r = csv_record(c);
    if (r != 1 || c->nf != ARCHIVE_NCOLS) {
        problem(out, "not an audit archive: unreadable header");
        goto done;
    }
    pgs_sbuf_t head = {0};
    for (int i = 0; i < c->nf; i++) {
        pgs_sbuf_puts(&head, i ? "," : "");
        pgs_sbuf_puts(&head, c->rec.buf + c->off[i]);
    }
    int same = head.buf && strcmp(head.buf, PGS_AUDIT_ARCHIVE_COLUMNS) == 0;
    free(head.buf);
    if (!same) {
        problem(out, "not an audit archive: unexpected columns");
        goto done;
    }
    while ((r = csv_record(c)) == 1) {
        if (scan_row(c, out, row, &scratch) != 0)
            goto done;
    }
    if (r < 0) {
        int zerr = 0;
        const char *msg = gzerror(c->gz, &zerr);
        problem(out, "row %" PRId64 ": %s", out->rows + 1, zerr ? msg : "malformed CSV record");
        goto done;
    }
    rc = 0;
done:
    if (c->gz)
        gzclose(c->gz);
    free(c->rec.buf);
    free(c);
    free(row);
    free(scratch.buf);
    return rc;
}

void pgs_audit_archive_scan_free(pgs_audit_archive_scan_t *scan)
{
    for (size_t i = 0; i < scan->nclinics; i++)
        free(scan->clinics[i].clinic_id);
    free(scan->clinics);
    scan->clinics = NULL;
    scan->nclinics = 0;
}

/* ---- manifests */

char *pgs_audit_archive_manifest_path(const char *data_path)
{
    size_t n = strlen(data_path);
    const char *sfx = ".csv.gz";
    size_t k = strlen(sfx);
    if (n > k && strcmp(data_path + n - k, sfx) == 0)
        n -= k;
    char *out = malloc(n + sizeof(".manifest.json"));
    if (!out)
        abort();
    memcpy(out, data_path, n);
    memcpy(out + n, ".manifest.json", sizeof(".manifest.json"));
    return out;
}

int pgs_audit_archive_sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        abort();
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static json_t *hash_json(const uint8_t h[HASH_SIZE])
{
    char x[2 * HASH_SIZE + 1];
    to_hex(h, HASH_SIZE, x);
    return json_string(x);
}

int pgs_audit_archive_write_manifest(const char *path, const pgs_audit_archive_meta_t *meta,
                                     const pgs_audit_archive_scan_t *scan, uint8_t sha256[32],
                                     char *err, size_t errlen)
{
    json_t *clinics = json_array();
    for (size_t i = 0; i < scan->nclinics; i++) {
        const pgs_audit_archive_clinic_t *c = &scan->clinics[i];
        json_array_append_new(
            clinics, json_pack("{s:s, s:I, s:I, s:o, s:I, s:o}", "clinic_id", c->clinic_id, "rows",
                               (json_int_t)c->rows, "first_seq", (json_int_t)c->first_seq,
                               "first_prev_hash", hash_json(c->first_prev_hash), "last_seq",
                               (json_int_t)c->last_seq, "last_hash", hash_json(c->last_hash)));
    }
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:o}", "format",
                  "pgscribe-audit-archive-1", "partition", meta->partition, "month", meta->month,
                  "from", meta->from, "to", meta->to, "file", meta->file, "rows",
                  (json_int_t)scan->rows, "sha256", hash_json(scan->sha256), "system_identifier",
                  meta->system_identifier, "created_at", meta->created_at, "clinics", clinics);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        snprintf(err, errlen, "cannot encode the manifest");
        return -1;
    }
    size_t len = strlen(text);
    text[len++] = '\n'; /* json_dumps leaves room: its NUL */
    pgs_sbuf_t tmp = {0};
    pgs_sbuf_printf(&tmp, "%s.tmp", path);
    int fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp.buf, path) == 0 && pgs_audit_archive_sync_dir(path) == 0;
    if (!ok) {
        snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
        unlink(tmp.buf);
    } else {
        EVP_Digest(text, len, sha256, NULL, EVP_sha256(), NULL);
    }
    free(tmp.buf);
    free(text);
    return ok ? 0 : -1;
}

static int hash_eq(json_t *obj, const char *key, const uint8_t h[HASH_SIZE])
{
    uint8_t m[HASH_SIZE];
    return from_hex(json_string_value(json_object_get(obj, key)), m) == 0 &&
           memcmp(m, h, HASH_SIZE) == 0;
}

static int64_t int_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static int check_clinics(json_t *list, const pgs_audit_archive_scan_t *scan, char *problem,
                         size_t len)
{
    if (!json_is_array(list) || json_array_size(list) != scan->nclinics) {
        snprintf(problem, len, "the manifest lists %zu clinics, the file holds %zu",
                 json_array_size(list), scan->nclinics);
        return -1;
    }
    for (size_t i = 0; i < scan->nclinics; i++) {
        const pgs_audit_archive_clinic_t *c = &scan->clinics[i];
        json_t *m = NULL;
        for (size_t j = 0; j < json_array_size(list) && !m; j++) {
            json_t *e = json_array_get(list, j);
            const char *id = json_string_value(json_object_get(e, "clinic_id"));
            m = id && strcmp(id, c->clinic_id) == 0 ? e : NULL;
        }
        const char *what = !m                                       ? "not in the manifest"
                           : int_of(m, "rows") != c->rows           ? "row count differs"
                           : int_of(m, "first_seq") != c->first_seq ? "first seq differs"
                           : !hash_eq(m, "first_prev_hash", c->first_prev_hash) ? "first prev_hash "
                                                                                  "differs"
                           : int_of(m, "last_seq") != c->last_seq               ? "last seq differs"
                           : !hash_eq(m, "last_hash", c->last_hash) ? "last hash differs"
                                                                    : NULL;
        if (what) {
            snprintf(problem, len, "clinic %s: %s from the manifest", c->clinic_id, what);
            return -1;
        }
    }
    return 0;
}

int pgs_audit_archive_check(const char *data_path, const char *manifest_path, int64_t expect_rows,
                            char *problem, size_t problemlen)
{
    json_error_t jerr;
    json_t *m = json_load_file(manifest_path, 0, &jerr);
    if (!json_is_object(m)) {
        snprintf(problem, problemlen, "%s: unreadable manifest: %s", manifest_path, jerr.text);
        json_decref(m);
        return -1;
    }
    pgs_audit_archive_scan_t scan;
    int rc = -1;
    char *copy = strdup(data_path);
    const char *file = json_string_value(json_object_get(m, "file"));
    if (!copy)
        abort();
    if (!file || strcmp(file, basename(copy)) != 0) {
        snprintf(problem, problemlen, "the manifest names file %s", file ? file : "(none)");
        free(copy);
        json_decref(m);
        return -1;
    }
    free(copy);
    int scanned = pgs_audit_archive_scan(data_path, &scan);
    if (!hash_eq(m, "sha256", scan.sha256)) {
        char got[2 * HASH_SIZE + 1];
        to_hex(scan.sha256, HASH_SIZE, got);
        snprintf(problem, problemlen, "SHA-256 mismatch: the manifest says %s, the file is %s",
                 json_string_value(json_object_get(m, "sha256")), got);
    } else if (scanned != 0) {
        snprintf(problem, problemlen, "%s", scan.problem);
    } else if (int_of(m, "rows") != scan.rows) {
        snprintf(problem, problemlen,
                 "row count mismatch: the manifest says %" PRId64 ", the file holds %" PRId64,
                 int_of(m, "rows"), scan.rows);
    } else if (expect_rows >= 0 && expect_rows != scan.rows) {
        snprintf(problem, problemlen,
                 "row count mismatch: the partition holds %" PRId64 ", the file %" PRId64,
                 expect_rows, scan.rows);
    } else if (check_clinics(json_object_get(m, "clinics"), &scan, problem, problemlen) == 0) {
        rc = 0;
    }
    pgs_audit_archive_scan_free(&scan);
    json_decref(m);
    return rc;
}
