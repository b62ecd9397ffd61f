/* Audit chain: canonical row encoding, link hash, text[] literal parsing. */
#include "common/auditchain.h"

#include <openssl/evp.h>
#include <string.h>

static void put_u32(pgs_sbuf_t *out, uint32_t v)
{
    char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    pgs_sbuf_putn(out, b, 4);
}

/* A field: 4-byte big-endian length and the bytes; NULL is ffffffff. */
static void put_field(pgs_sbuf_t *out, const pgs_auditchain_field_t *f)
{
    if (!f->ptr) {
        put_u32(out, 0xffffffffu);
        return;
    }
    put_u32(out, (uint32_t)f->len);
    pgs_sbuf_putn(out, f->ptr, f->len);
}

void pgs_auditchain_encode(const pgs_auditchain_row_t *row, pgs_sbuf_t *out)
{
    for (int i = 0; i < PGS_AUDITCHAIN_NFIELDS; i++) {
        if (i != PGS_AUDITCHAIN_COLUMNS) {
            put_field(out, &row->fields[i]);
        } else if (row->ncolumns < 0) {
            put_u32(out, 0xffffffffu);
        } else {
            /* an array: 4-byte count, then each element as a field */
            put_u32(out, (uint32_t)row->ncolumns);
            for (int c = 0; c < row->ncolumns; c++)
                put_field(out, &row->columns[c]);
        }
    }
}

int pgs_auditchain_hash(const uint8_t prev[PGS_AUDITCHAIN_HASH_SIZE],
                        const pgs_auditchain_row_t *row, pgs_sbuf_t *scratch,
                        uint8_t out[PGS_AUDITCHAIN_HASH_SIZE])
{
    scratch->len = 0;
    pgs_sbuf_putn(scratch, (const char *)prev, PGS_AUDITCHAIN_HASH_SIZE);
    pgs_auditchain_encode(row, scratch);
    unsigned int n = 0;
    return EVP_Digest(scratch->buf, scratch->len, out, &n, EVP_sha256(), NULL) &&
                   n == PGS_AUDITCHAIN_HASH_SIZE
               ? 0
               : -1;
}

/* The array literal's grammar as array_out writes a one-dimensional text[]:
 * "{}" or "{" element ("," element)* "}", an element being NULL, a bare
 * word, or a double-quoted string with \" and \\ escaped. */
int pgs_auditchain_parse_array(char *buf, size_t len, pgs_auditchain_row_t *row)
{
    row->ncolumns = 0;
    if (len < 2 || buf[0] != '{' || buf[len - 1] != '}')
        return -1;
    size_t i = 1, end = len - 1;
    if (i == end)
        return 0;
    for (;;) {
        if (row->ncolumns >= PGS_AUDITCHAIN_MAX_COLUMNS)
            return -1;
        pgs_auditchain_field_t *f = &row->columns[row->ncolumns++];
        if (buf[i] == '"') {
            char *w = buf + ++i;
            f->ptr = w;
            while (i < end && buf[i] != '"') {
                if (buf[i] == '\\' && i + 1 < end)
                    i++;
                *w++ = buf[i++];
            }
            if (i >= end)
                return -1;
            f->len = (size_t)(w - f->ptr);
            i++;
        } else {
            size_t s = i;
            while (i < end && buf[i] != ',')
                i++;
            f->ptr = buf + s;
            f->len = i - s;
            if (f->len == 4 && memcmp(f->ptr, "NULL", 4) == 0)
                f->ptr = NULL;
        }
        if (i == end)
            return 0;
        if (buf[i] != ',')
            return -1;
        i++;
    }
}
