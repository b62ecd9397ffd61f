/* Unit tests: the audit chain's canonical encoding and link hash against
 * the fixed vectors of docs/audit_vectors.json (computed by PostgreSQL's
 * audit.canonical(), shared with docs/audit_verify.py), and the text[]
 * literal parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/auditchain.h"

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void from_hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void load_row(json_t *fields, pgs_auditchain_row_t *row)
{
    assert_int_equal(json_array_size(fields), PGS_AUDITCHAIN_NFIELDS);
    for (int i = 0; i < PGS_AUDITCHAIN_NFIELDS; i++) {
        json_t *f = json_array_get(fields, (size_t)i);
        if (i == PGS_AUDITCHAIN_COLUMNS) {
            row->ncolumns = json_is_null(f) ? -1 : (int)json_array_size(f);
            for (int c = 0; c < row->ncolumns; c++) {
                json_t *e = json_array_get(f, (size_t)c);
                row->columns[c].ptr = json_string_value(e);
                row->columns[c].len = json_string_length(e);
            }
            continue;
        }
        row->fields[i].ptr = json_is_null(f) ? NULL : json_string_value(f);
        row->fields[i].len = json_is_null(f) ? 0 : json_string_length(f);
    }
}

static void test_vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *doc = json_load_file(PGS_SOURCE_DIR "/docs/audit_vectors.json", 0, &jerr);
    assert_non_null(doc);
    json_t *vectors = json_object_get(doc, "vectors");
    assert_true(json_array_size(vectors) >= 2);
    pgs_sbuf_t scratch = {0};
    for (size_t v = 0; v < json_array_size(vectors); v++) {
        json_t *vec = json_array_get(vectors, v);
        pgs_auditchain_row_t row;
        memset(&row, 0, sizeof(row));
        load_row(json_object_get(vec, "fields"), &row);
        json_t *canon = json_object_get(vec, "canonical");
        if (canon) {
            pgs_sbuf_t enc = {0};
            pgs_auditchain_encode(&row, &enc);
            char *hex = malloc(2 * enc.len + 1);
            to_hex((const uint8_t *)enc.buf, enc.len, hex);
            assert_string_equal(hex, json_string_value(canon));
            free(hex);
            free(enc.buf);
        }
        uint8_t prev[32], h[32];
        from_hex(json_string_value(json_object_get(vec, "prev_hash")), prev, 32);
        assert_int_equal(pgs_auditchain_hash(prev, &row, &scratch, h), 0);
        char hex[65];
        to_hex(h, 32, hex);
        assert_string_equal(hex, json_string_value(json_object_get(vec, "hash")));
        /* any change of a field changes the hash */
        row.fields[PGS_AUDITCHAIN_ACTOR].len--;
        assert_int_equal(pgs_auditchain_hash(prev, &row, &scratch, h), 0);
        to_hex(h, 32, hex);
        assert_string_not_equal(hex, json_string_value(json_object_get(vec, "hash")));
    }
    free(scratch.buf);
    json_decref(doc);
}

/* NULL and the empty string, an empty array and a NULL one, differ. */
static void test_null_is_not_empty(void **state)
{
    (void)state;
    pgs_auditchain_row_t a, b;
    memset(&a, 0, sizeof(a));
    a.ncolumns = -1;
    b = a;
    b.fields[PGS_AUDITCHAIN_ACTOR].ptr = "";
    pgs_sbuf_t ea = {0}, eb = {0};
    pgs_auditchain_encode(&a, &ea);
    pgs_auditchain_encode(&b, &eb);
    assert_int_equal(ea.len, eb.len);
    assert_true(memcmp(ea.buf, eb.buf, ea.len) != 0);
    b = a;
    b.ncolumns = 0;
    eb.len = 0;
    pgs_auditchain_encode(&b, &eb);
    assert_int_equal(ea.len, eb.len);
    assert_true(memcmp(ea.buf, eb.buf, ea.len) != 0);
    free(ea.buf);
    free(eb.buf);
}

static void test_parse_array(void **state)
{
    (void)state;
    pgs_auditchain_row_t row;
    char s1[] = "{}";
    assert_int_equal(pgs_auditchain_parse_array(s1, strlen(s1), &row), 0);
    assert_int_equal(row.ncolumns, 0);
    char s2[] = "{name,\"a b\",NULL,\"NULL\",\"q\\\"x\\\\\"}";
    assert_int_equal(pgs_auditchain_parse_array(s2, strlen(s2), &row), 0);
    assert_int_equal(row.ncolumns, 5);
    assert_memory_equal(row.columns[0].ptr, "name", 4);
    assert_int_equal(row.columns[1].len, 3);
    assert_memory_equal(row.columns[1].ptr, "a b", 3);
    assert_null(row.columns[2].ptr);
    assert_int_equal(row.columns[3].len, 4);
    assert_non_null(row.columns[3].ptr);
    assert_int_equal(row.columns[4].len, 4);
    assert_memory_equal(row.columns[4].ptr, "q\"x\\", 4);
    char bad[] = "{\"open";
    assert_int_equal(pgs_auditchain_parse_array(bad, strlen(bad), &row), -1);
    char bad2[] = "name";
    assert_int_equal(pgs_auditchain_parse_array(bad2, strlen(bad2), &row), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_null_is_not_empty),
        cmocka_unit_test(test_parse_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
