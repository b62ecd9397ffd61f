/* W3C traceparent parsing and formatting. */
#include "common/traceparent.h"

#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is invalid in traceparent */
}

/* Decodes 2n hex digits at s into n bytes; -1 on a non-hex digit. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int pgs_traceparent_parse(const void *value, size_t len, pgs_traceparent_t *out)
{
    const char *s = value;
    if (!s || len < PGS_TRACEPARENT_LEN)
        return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    pgs_traceparent_t tp;
    if (unhex(s, &tp.version, 1) || tp.version == 0xff)
        return -1;
    if (tp.version == 0 && len != PGS_TRACEPARENT_LEN)
        return -1;
    if (tp.version != 0 && len > PGS_TRACEPARENT_LEN && s[PGS_TRACEPARENT_LEN] != '-')
        return -1;
    if (unhex(s + 3, tp.trace_id, 16) || unhex(s + 36, tp.span_id, 8) ||
        unhex(s + 53, &tp.flags, 1))
        return -1;
    if (all_zero(tp.trace_id, 16) || all_zero(tp.span_id, 8))
        return -1;
    *out = tp;
    return 0;
}

void pgs_traceparent_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

void pgs_traceparent_format(const pgs_traceparent_t *tp, char buf[PGS_TRACEPARENT_LEN + 1])
{
    memcpy(buf, "00-", 3);
    pgs_traceparent_hex(tp->trace_id, 16, buf + 3);
    buf[35] = '-';
    pgs_traceparent_hex(tp->span_id, 8, buf + 36);
    buf[52] = '-';
    pgs_traceparent_hex(&tp->flags, 1, buf + 53);
}
