/* Masking one value (see mask.h). */
#include "common/mask.h"

#include <stdio.h>
#include <string.h>

#include "common/fieldcrypt.h"

static const char *const names[] = {"keep", "pseudonym", "year", "null"};

int pgs_mask_parse(const char *name, pgs_mask_t *out)
{
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        if (name && strcmp(name, names[i]) == 0) {
            *out = (pgs_mask_t)i;
            return 0;
        }
    }
    return -1;
}

const char *pgs_mask_name(pgs_mask_t m)
{
    return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

static size_t hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

static int year_of(const char *v, size_t len, char out[PGS_MASK_MAX_OUT], size_t *out_len)
{
    for (int i = 0; i < 4; i++)
        if ((size_t)i >= len || v[i] < '0' || v[i] > '9')
            return 0;
    if (len > 4 && v[4] != '-')
        return 0;
    /* a timestamp's text form has a time after the date ("YYYY-MM-DD hh:...") */
    int is_ts = len > 10 && v[10] == ' ';
    const char *zone = NULL;
    if (is_ts) {
        /* keep a zone suffix (+01, -05:30) so timestamptz parses alike */
        for (size_t i = len; i > 11; i--) {
            if (v[i - 1] == '+' || v[i - 1] == '-') {
                zone = v + i - 1;
                break;
            }
        }
    }
    int n = snprintf(out, PGS_MASK_MAX_OUT, "%.4s-01-01%s%.*s", v, is_ts ? " 00:00:00" : "",
                     zone ? (int)(len - (size_t)(zone - v)) : 0, zone ? zone : "");
    if (n < 0 || n >= PGS_MASK_MAX_OUT)
        return 0;
    *out_len = (size_t)n;
    return 1;
}

int pgs_mask_value(pgs_mask_t m, pgs_mask_form_t form, const PgsKey *key, const char *entity,
                   const char *column, const char *value, size_t len, char out[PGS_MASK_MAX_OUT],
                   size_t *out_len)
{
    *out_len = 0;
    out[0] = '\0';
    switch (m) {
    case PGS_MASK_KEEP:
        return 2;
    case PGS_MASK_NULL:
        return 0;
    case PGS_MASK_YEAR:
        return year_of(value, len, out, out_len);
    case PGS_MASK_PSEUDONYM: {
        unsigned char mac[PGS_PSEUDONYM_BYTES];
        if (!key || pgs_pseudonym(key, entity, column, value, len, mac) != 0)
            return -1;
        if (form == PGS_MASK_AS_UUID) {
            mac[6] = (unsigned char)((mac[6] & 0x0f) | 0x80); /* version 8 */
            mac[8] = (unsigned char)((mac[8] & 0x3f) | 0x80); /* RFC 4122 variant */
            char h[33];
            hex(mac, 16, h);
            *out_len = (size_t)snprintf(out, PGS_MASK_MAX_OUT, "%.8s-%.4s-%.4s-%.4s-%.12s", h,
                                        h + 8, h + 12, h + 16, h + 20);
        } else {
            *out_len = hex(mac, 16, out);
        }
        return 1;
    }
    }
    return -1;
}
