/* Avro binary pre-scan: bounds, limits and text checks before avro-c reads. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"

/* avro-c 1.11.1 allocates whatever length a string or bytes prefix claims
 * before it notices the buffer is shorter (a 9-byte message can ask for
 * petabytes), and it accepts any text in a string. Walking the bytes against
 * the writer schema first bounds every length by the bytes that are really
 * there, applies the contract's string checks, and tells a truncated message
 * from a malformed one. Error texts name schema fields, never data. */

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    char *errstr;
    size_t errstr_size;
} scan_t;

static pgs_err_t scan_fail(scan_t *s, pgs_err_t err, const char *field, const char *why)
{
    pgs_codec_check_errf(s->errstr, s->errstr_size, "field '%s': %s", field, why);
    return err;
}

static size_t scan_left(const scan_t *s)
{
    return (size_t)(s->end - s->p);
}

static pgs_err_t scan_long(scan_t *s, const char *field, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0;; i++) {
        if (i == 10)
            return scan_fail(s, PGS_E_DECODE_AVRO, field, "varint longer than 10 bytes");
        if (s->p == s->end)
            return scan_fail(s, PGS_E_DECODE_TRUNCATED, field, "message ends inside a number");
        unsigned char b = *s->p++;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
    return PGS_OK;
}

static pgs_err_t scan_skip(scan_t *s, const char *field, size_t n)
{
    if (scan_left(s) < n)
        return scan_fail(s, PGS_E_DECODE_TRUNCATED, field, "message ends inside a value");
    s->p += n;
    return PGS_OK;
}

/* @p text, if given, gets the string's bytes (within the message). */
static pgs_err_t scan_text(scan_t *s, const char *field, int is_string, const char *what,
                           const unsigned char **text, size_t *text_len)
{
    int64_t n;
    pgs_err_t err = scan_long(s, field, &n);
    if (err)
        return err;
    if (n < 0)
        return scan_fail(s, PGS_E_DECODE_AVRO, field, "negative length");
    if ((uint64_t)n > scan_left(s))
        return scan_fail(s, PGS_E_DECODE_TRUNCATED, field, "message ends inside a string");
    if (is_string) {
        err = pgs_codec_check_string((const char *)s->p, (size_t)n, field, what, s->errstr,
                                     s->errstr_size);
        if (err)
            return err;
    }
    if (text) {
        *text = s->p;
        *text_len = (size_t)n;
    }
    s->p += n;
    return PGS_OK;
}

static pgs_err_t scan_value(scan_t *s, avro_schema_t schema, const char *field);

/* One map's keys, to find a repeated one. */
typedef struct {
    const unsigned char *p;
    size_t len;
} scan_key_t;

static int scan_key_cmp(const void *a, const void *b)
{
    const scan_key_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* avro-c keeps the last value of a key given twice, so a repeated key
 * would let "id" name one row to a check and another to the write: it is
 * refused, as a repeated JSON name is. Keys are sorted, not hashed: n log n
 * for any input. */
static pgs_err_t scan_map_unique(scan_t *s, const char *field, scan_key_t *keys, size_t n)
{
    if (n < 2)
        return PGS_OK;
    qsort(keys, n, sizeof(*keys), scan_key_cmp);
    for (size_t i = 1; i < n; i++)
        if (scan_key_cmp(&keys[i - 1], &keys[i]) == 0)
            return scan_fail(s, PGS_E_DECODE_DUPLICATE_FIELD, field,
                             "a map key appears more than once");
    return PGS_OK;
}

/* Maps and arrays come in blocks; a negative count is followed by the
 * block's byte size. Every item of pgscribe's schemas takes at least one
 * byte, so a count larger than the bytes left is a truncated message (and
 * refusing it keeps avro-c from appending billions of items). */
static pgs_err_t scan_blocks(scan_t *s, avro_schema_t items, const char *field, int is_map)
{
    scan_key_t *keys = NULL;
    size_t nkeys = 0, cap = 0;
    pgs_err_t err;
    for (;;) {
        int64_t count, size;
        if ((err = scan_long(s, field, &count)))
            break;
        if (count == 0) {
            err = is_map ? scan_map_unique(s, field, keys, nkeys) : PGS_OK;
            break;
        }
        if (count == INT64_MIN) {
            err = scan_fail(s, PGS_E_DECODE_AVRO, field, "bad block count");
            break;
        }
        if (count < 0) {
            count = -count;
            if ((err = scan_long(s, field, &size)))
                break;
        }
        if ((uint64_t)count > scan_left(s)) {
            err = scan_fail(s, PGS_E_DECODE_TRUNCATED, field, "message ends inside a block");
            break;
        }
        if (is_map && nkeys + (size_t)count > cap) {
            size_t want = nkeys + (size_t)count;
            scan_key_t *k = realloc(keys, want * sizeof(*keys));
            if (!k) {
                err = scan_fail(s, PGS_E_DECODE_TOO_LARGE, field, "map too large to check");
                break;
            }
            keys = k;
            cap = want;
        }
        for (int64_t i = 0; i < count && !err; i++) {
            if (is_map) {
                err = scan_text(s, field, 1, "map key", &keys[nkeys].p, &keys[nkeys].len);
                nkeys += !err;
            }
            if (!err)
                err = scan_value(s, items, field);
        }
        if (err)
            break;
    }
    free(keys);
    return err;
}

static pgs_err_t scan_value(scan_t *s, avro_schema_t schema, const char *field)
{
    pgs_err_t err;
    int64_t n;
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        return PGS_OK;
    case AVRO_BOOLEAN:
        if (scan_left(s) < 1)
            return scan_fail(s, PGS_E_DECODE_TRUNCATED, field, "message ends inside a value");
        if (*s->p > 1)
            return scan_fail(s, PGS_E_DECODE_AVRO, field, "boolean is neither 0 nor 1");
        s->p++;
        return PGS_OK;
    case AVRO_INT32:
        if ((err = scan_long(s, field, &n)))
            return err;
        if (n < INT32_MIN || n > INT32_MAX)
            return scan_fail(s, PGS_E_DECODE_AVRO, field, "int out of range");
        return PGS_OK;
    case AVRO_INT64:
        return scan_long(s, field, &n);
    case AVRO_FLOAT:
        return scan_skip(s, field, 4);
    case AVRO_DOUBLE:
        return scan_skip(s, field, 8);
    case AVRO_STRING:
        return scan_text(s, field, 1, "string", NULL, NULL);
    case AVRO_BYTES:
        return scan_text(s, field, 0, "bytes", NULL, NULL);
    case AVRO_FIXED:
        return scan_skip(s, field, (size_t)avro_schema_fixed_size(schema));
    case AVRO_ENUM:
        if ((err = scan_long(s, field, &n)))
            return err;
        if (n < 0 || n >= avro_schema_enum_number_of_symbols(schema))
            return scan_fail(s, strcmp(field, "op") == 0 ? PGS_E_DECODE_BAD_OP : PGS_E_DECODE_AVRO,
                             field, "enum index out of range");
        return PGS_OK;
    case AVRO_UNION:
        if ((err = scan_long(s, field, &n)))
            return err;
        if (n < 0 || (uint64_t)n >= avro_schema_union_size(schema))
            return scan_fail(s, PGS_E_DECODE_AVRO, field, "union branch out of range");
        return scan_value(s, avro_schema_union_branch(schema, (int)n), field);
    case AVRO_MAP:
        return scan_blocks(s, avro_schema_map_values(schema), field, 1);
    case AVRO_ARRAY:
        return scan_blocks(s, avro_schema_array_items(schema), field, 0);
    case AVRO_RECORD: {
        size_t nf = avro_schema_record_size(schema);
        for (size_t i = 0; i < nf; i++) {
            err = scan_value(s, avro_schema_record_field_get_by_index(schema, (int)i),
                             avro_schema_record_field_name(schema, (int)i));
            if (err)
                return err;
        }
        return PGS_OK;
    }
    default:
        return scan_fail(s, PGS_E_DECODE_AVRO, field, "unsupported schema type");
    }
}

pgs_err_t pgs_codec_scan_avro(avro_schema_t schema, const void *buf, size_t len, char *errstr,
                              size_t errstr_size)
{
    scan_t s = {buf, (const unsigned char *)buf + len, errstr, errstr_size};
    pgs_err_t err = scan_value(&s, schema, avro_schema_name(schema));
    if (err)
        return err;
    if (s.p != s.end) {
        pgs_codec_check_errf(errstr, errstr_size, "%zu trailing bytes after the record",
                             scan_left(&s));
        return PGS_E_DECODE_AVRO;
    }
    return PGS_OK;
}
