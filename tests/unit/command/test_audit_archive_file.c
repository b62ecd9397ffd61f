/* Unit tests: audit archive files (command/audit_archive_file.c). Each test
 * writes a small gzip CSV whose chains are computed here with
 * pgs_auditchain_hash(), then scans it, writes its manifest and checks it:
 * quoting, NULL versus the empty string, a seq gap, a flipped byte, a wrong
 * row count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "command/audit_archive_file.h"
#include "common/auditchain.h"
#include "common/sbuf.h"

#define NF PGS_AUDITCHAIN_NFIELDS

typedef struct {
    char dir[64];
    char data[128];
    char manifest[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pgs-archive-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data, sizeof(f->data), "%s/audit-events-2018-01.csv.gz", f->dir);
    snprintf(f->manifest, sizeof(f->manifest), "%s/audit-events-2018-01.manifest.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unlink(f->data);
    unlink(f->manifest);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void csv_field(pgs_sbuf_t *csv, const char *v)
{
    if (!v)
        return; /* NULL: unquoted empty */
    if (*v && !strpbrk(v, ",\"\n")) {
        pgs_sbuf_puts(csv, v);
        return;
    }
    pgs_sbuf_puts(csv, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            pgs_sbuf_puts(csv, "\"\"");
        else
            pgs_sbuf_putn(csv, p, 1);
    }
    pgs_sbuf_puts(csv, "\"");
}

static void hexify(const uint8_t *b, char out[65])
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* Appends one row of @p clinic at @p seq to @p csv, linked to @p prev (which
 * becomes its hash). @p recipient_in_file, when not the hashed recipient,
 * writes another value than the one hashed. */
static void add_row(pgs_sbuf_t *csv, const char *clinic, int seq, uint8_t prev[32],
                    const char *recipient, const char *recipient_in_file)
{
    char seqs[16], off[16];
    snprintf(seqs, sizeof(seqs), "%d", seq);
    snprintf(off, sizeof(off), "%d", seq * 10);
    const char *f[NF] = {clinic,
                         seqs,
                         "event",
                         "0b7c3b8e-4a43-4f5c-9a0e-2d1f6c7e8a90",
                         NULL,
                         "1514764860000000",
                         "1514768400000000",
                         "dr-1",
                         "DISCLOSE",
                         "patients",
                         "p1",
                         "{name,\"a, b\",\"\"}",
                         "SUCCESS",
                         recipient,
                         "care",
                         "line one, \"two\"\nline three",
                         "ehr",
                         "{\"k\": \"v\"}",
                         "clinic.audit",
                         "0",
                         off,
                         NULL};
    pgs_auditchain_row_t *row = calloc(1, sizeof(*row));
    for (int i = 0; i < NF; i++) {
        row->fields[i].ptr = f[i];
        row->fields[i].len = f[i] ? strlen(f[i]) : 0;
    }
    char *cols = strdup(f[PGS_AUDITCHAIN_COLUMNS]);
    assert_int_equal(pgs_auditchain_parse_array(cols, strlen(cols), row), 0);
    uint8_t h[32];
    pgs_sbuf_t scratch = {0};
    assert_int_equal(pgs_auditchain_hash(prev, row, &scratch, h), 0);
    char ph[65], hh[65];
    hexify(prev, ph);
    hexify(h, hh);
    f[PGS_AUDITCHAIN_RECIPIENT] = recipient_in_file;
    for (int i = 0; i < NF; i++) {
        csv_field(csv, f[i]);
        pgs_sbuf_puts(csv, ",");
    }
    pgs_sbuf_printf(csv, "%s,%s\n", ph, hh);
    memcpy(prev, h, 32);
    free(cols);
    free(scratch.buf);
    free(row);
}

static void write_gz(const char *path, const pgs_sbuf_t *csv)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, csv->buf, (unsigned)csv->len), (int)csv->len);
    assert_int_equal(gzclose(gz), Z_OK);
}

/* c-1 from seq 1 (zero prev_hash), c-2 from seq 5 (a boundary 0x11...). */
static void write_sample(const char *path, int gap, const char *c2_recipient_in_file)
{
    pgs_sbuf_t csv = {0};
    pgs_sbuf_printf(&csv, "%s\n", PGS_AUDIT_ARCHIVE_COLUMNS);
    uint8_t p1[32] = {0}, p2[32];
    memset(p2, 0x11, sizeof(p2));
    add_row(&csv, "c-1", 1, p1, "", "");
    add_row(&csv, "c-1", 2, p1, NULL, NULL);
    add_row(&csv, "c-1", gap ? 4 : 3, p1, "x", "x");
    add_row(&csv, "c-2", 5, p2, "", c2_recipient_in_file);
    add_row(&csv, "c-2", 6, p2, "y", "y");
    write_gz(path, &csv);
    free(csv.buf);
}

static const pgs_audit_archive_meta_t META = {.partition = "audit.events_2018_01",
                                              .month = "2018-01",
                                              .from = "2018-01-01T00:00:00Z",
                                              .to = "2018-02-01T00:00:00Z",
                                              .file = "audit-events-2018-01.csv.gz",
                                              .system_identifier = "7312345678901234567",
                                              .created_at = "2026-12-02T00:00:00Z"};

static void test_scan_and_check(void **state)
{
    fixture_t *f = *state;
    write_sample(f->data, 0, "");
    pgs_audit_archive_scan_t scan;
    assert_int_equal(pgs_audit_archive_scan(f->data, &scan), 0);
    assert_string_equal(scan.problem, "");
    assert_int_equal(scan.rows, 5);
    assert_int_equal(scan.nclinics, 2);
    assert_string_equal(scan.clinics[1].clinic_id, "c-2");
    assert_int_equal(scan.clinics[1].first_seq, 5);
    assert_int_equal(scan.clinics[1].last_seq, 6);
    assert_int_equal(scan.clinics[1].first_prev_hash[0], 0x11);
    uint8_t msha[32];
    char err[256] = "";
    assert_int_equal(
        pgs_audit_archive_write_manifest(f->manifest, &META, &scan, msha, err, sizeof(err)), 0);
    pgs_audit_archive_scan_free(&scan);
    assert_int_equal(pgs_audit_archive_check(f->data, f->manifest, 5, err, sizeof(err)), 0);
    assert_int_equal(pgs_audit_archive_check(f->data, f->manifest, -1, err, sizeof(err)), 0);
    /* the partition holds another count */
    assert_int_equal(pgs_audit_archive_check(f->data, f->manifest, 4, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "row count mismatch"));
    /* one flipped byte */
    FILE *fp = fopen(f->data, "r+b");
    assert_non_null(fp);
    fseek(fp, 30, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 30, SEEK_SET);
    fputc(c ^ 1, fp);
    fclose(fp);
    assert_int_equal(pgs_audit_archive_check(f->data, f->manifest, -1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "SHA-256 mismatch"));
}

/* An empty string hashed, NULL written: the row no longer matches its hash. */
static void test_null_is_not_empty(void **state)
{
    fixture_t *f = *state;
    write_sample(f->data, 0, NULL);
    pgs_audit_archive_scan_t scan;
    assert_int_equal(pgs_audit_archive_scan(f->data, &scan), -1);
    assert_string_equal(scan.problem, "clinic c-2 seq 5: hash does not match the row's content");
    pgs_audit_archive_scan_free(&scan);
}

static void test_gap(void **state)
{
    fixture_t *f = *state;
    write_sample(f->data, 1, "");
    pgs_audit_archive_scan_t scan;
    assert_int_equal(pgs_audit_archive_scan(f->data, &scan), -1);
    assert_string_equal(scan.problem, "clinic c-1: seq 4 follows seq 2");
    pgs_audit_archive_scan_free(&scan);
}

static void test_not_an_archive(void **state)
{
    fixture_t *f = *state;
    pgs_sbuf_t csv = {0};
    pgs_sbuf_puts(&csv, "a,b\n1,2\n");
    write_gz(f->data, &csv);
    free(csv.buf);
    pgs_audit_archive_scan_t scan;
    assert_int_equal(pgs_audit_archive_scan(f->data, &scan), -1);
    assert_non_null(strstr(scan.problem, "not an audit archive"));
    pgs_audit_archive_scan_free(&scan);
}

static void test_manifest_path(void **state)
{
    (void)state;
    char *p = pgs_audit_archive_manifest_path("/a/audit-events-2018-01.csv.gz");
    assert_string_equal(p, "/a/audit-events-2018-01.manifest.json");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_is_not_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_archive, setup, teardown),
        cmocka_unit_test(test_manifest_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
