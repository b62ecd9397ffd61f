/* Key forms: canonical text of a key value by its column's type, so that two
 * spellings PostgreSQL takes as one row (a uuid in upper and in lower case,
 * "042" and 42 for an integer) give one lane and one idempotency digest. */
#include "catalog/keyform.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/numtext.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_UUID 2950

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* PostgreSQL's uuid_in: optional braces around 32 hex digits, either case,
 * with an optional hyphen after any group of four digits. */
static int uuid_form(pgs_sbuf_t *out, const char *s, size_t len)
{
    size_t i = 0, end = len;
    if (len >= 2 && s[0] == '{') {
        if (s[len - 1] != '}')
            return -1;
        i = 1;
        end = len - 1;
    }
    char hex[32];
    int n = 0;
    while (i < end && n < 32) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -1;
        hex[n++] = "0123456789abcdef"[d];
        i++;
        if (n % 4 == 0 && n < 32 && i < end && s[i] == '-')
            i++;
    }
    if (n != 32 || i != end)
        return -1;
    static const int groups[] = {8, 4, 4, 4, 12};
    int at = 0;
    for (int g = 0; g < 5; g++) {
        if (g)
            pgs_sbuf_putn(out, "-", 1);
        pgs_sbuf_putn(out, hex + at, (size_t)groups[g]);
        at += groups[g];
    }
    return 0;
}

/* PostgreSQL 15's int2in/int4in/int8in: blanks, an optional sign, decimal
 * digits, blanks. Leading zeros and a '+' do not make another row. */
static int int_form(pgs_sbuf_t *out, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_space(s[i]))
        i++;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t start = i;
    uint64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1; /* beyond any integer column; PostgreSQL rejects it */
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == start)
        return -1;
    while (i < len && is_space(s[i]))
        i++;
    if (i != len)
        return -1;
    char buf[PGS_NUMTEXT_MAX];
    if (neg && v)
        pgs_sbuf_putn(out, "-", 1);
    pgs_sbuf_putn(out, buf, pgs_numtext_u64(v, buf));
    return 0;
}

/* PostgreSQL's boolin: blanks around a case-insensitive prefix of true,
 * false, yes, no, or on, off (two letters at least), 1, 0. */
static int bool_form(pgs_sbuf_t *out, const char *s, size_t len)
{
    while (len && is_space(*s))
        s++, len--;
    while (len && is_space(s[len - 1]))
        len--;
    char low[8];
    if (len == 0 || len >= sizeof(low))
        return -1;
    for (size_t i = 0; i < len; i++)
        low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
    low[len] = '\0';
    static const char *const truths[] = {"true", "yes"}, *const lies[] = {"false", "no"};
    int val = -1;
    for (int k = 0; k < 2; k++) {
        if (strncmp(truths[k], low, len) == 0 && len <= strlen(truths[k]))
            val = 1;
        if (strncmp(lies[k], low, len) == 0 && len <= strlen(lies[k]))
            val = 0;
    }
    if (strcmp(low, "on") == 0 || strcmp(low, "1") == 0)
        val = 1;
    if ((len >= 2 && strncmp("off", low, len) == 0) || strcmp(low, "0") == 0)
        val = 0;
    if (val < 0)
        return -1;
    pgs_sbuf_putn(out, val ? "t" : "f", 1);
    return 0;
}

int pgs_keyform_append(pgs_sbuf_t *out, const pgs_column_t *col, const pgs_value_t *v)
{
    char num[40];
    const char *s = num;
    size_t len;
    switch (v->type) {
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        s = v->u.s.ptr ? v->u.s.ptr : "";
        len = v->u.s.len;
        break;
    case PGS_VAL_LONG:
        len = pgs_numtext_i64(v->u.l, num);
        break;
    case PGS_VAL_DOUBLE:
        len = (size_t)snprintf(num, sizeof(num), "%.17g", v->u.d);
        break;
    case PGS_VAL_BOOL:
        s = v->u.b ? "true" : "false";
        len = v->u.b ? 4 : 5;
        break;
    default:
        return -1; /* a null key value matches no row */
    }
    if (v->type != PGS_VAL_BYTES) {
        switch (col->type_oid) {
        case OID_UUID:
            return uuid_form(out, s, len);
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
            return int_form(out, s, len);
        case OID_BOOL:
            return bool_form(out, s, len);
        default:
            break;
        }
    }
    pgs_sbuf_putn(out, s, len);
    return 0;
}
