/* Codec checks shared by Avro and JSON: limits, UTF-8, uuids, base64. */
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"
#include "common/xalloc.h"

void pgs_codec_check_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF, because PostgreSQL rejects all of those and a message that
 * cannot be stored is better refused at the door. */
int pgs_codec_check_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int pgs_codec_check_uuid(const char *s, size_t len)
{
    if (!s || len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

pgs_err_t pgs_codec_check_string(const char *s, size_t len, const char *field, const char *what,
                                 char *errstr, size_t errstr_size)
{
    if (len > PGS_MAX_STRING_BYTES) {
        pgs_codec_check_errf(errstr, errstr_size, "field '%s': %s longer than %d bytes", field,
                             what, PGS_MAX_STRING_BYTES);
        return PGS_E_DECODE_TOO_LARGE;
    }
    if (memchr(s, '\0', len)) {
        pgs_codec_check_errf(errstr, errstr_size, "field '%s': %s contains a NUL byte", field,
                             what);
        return PGS_E_DECODE_NUL_BYTE;
    }
    if (!pgs_codec_check_utf8(s, len)) {
        pgs_codec_check_errf(errstr, errstr_size, "field '%s': %s is not valid UTF-8", field, what);
        return PGS_E_DECODE_BAD_UTF8;
    }
    return PGS_OK;
}

static pgs_err_t require_text(const char *s, const char *field, char *errstr, size_t errstr_size)
{
    if (!s || !*s) {
        pgs_codec_check_errf(errstr, errstr_size, "field '%s' is missing or empty", field);
        return PGS_E_DECODE_MISSING_FIELD;
    }
    return PGS_OK;
}

pgs_err_t pgs_codec_check_command(const pgs_command_t *cmd, char *errstr, size_t errstr_size)
{
    pgs_err_t err;
    if ((err = require_text(cmd->command_id, "command_id", errstr, errstr_size)))
        return err;
    if (!pgs_codec_check_uuid(cmd->command_id, strlen(cmd->command_id))) {
        pgs_codec_check_errf(errstr, errstr_size, "field 'command_id': not a canonical uuid");
        return PGS_E_DECODE_BAD_UUID;
    }
    if ((err = require_text(cmd->clinic_id, "clinic_id", errstr, errstr_size)) ||
        (err = require_text(cmd->actor, "actor", errstr, errstr_size)) ||
        (err = require_text(cmd->entity, "entity", errstr, errstr_size)))
        return err;
    if ((unsigned)cmd->op > PGS_OP_DELETE) {
        pgs_codec_check_errf(errstr, errstr_size, "field 'op': unknown operation");
        return PGS_E_DECODE_BAD_OP;
    }
    if (cmd->key_cnt == 0) {
        pgs_codec_check_errf(errstr, errstr_size, "field 'key' is missing or empty");
        return PGS_E_DECODE_MISSING_FIELD;
    }
    return PGS_OK;
}

pgs_err_t pgs_codec_check_audit(const pgs_audit_event_t *ev, char *errstr, size_t errstr_size)
{
    pgs_err_t err;
    if ((err = require_text(ev->event_id, "event_id", errstr, errstr_size)))
        return err;
    if (!pgs_codec_check_uuid(ev->event_id, strlen(ev->event_id))) {
        pgs_codec_check_errf(errstr, errstr_size, "field 'event_id': not a canonical uuid");
        return PGS_E_DECODE_BAD_UUID;
    }
    if ((err = require_text(ev->clinic_id, "clinic_id", errstr, errstr_size)) ||
        (err = require_text(ev->actor, "actor", errstr, errstr_size)) ||
        (err = require_text(ev->action, "action", errstr, errstr_size)) ||
        (err = require_text(ev->outcome, "outcome", errstr, errstr_size)))
        return err;
    /* a disclosure names who received what and why (AuditEvent v2) */
    if (strcmp(ev->action, "DISCLOSE") == 0 &&
        (!ev->recipient || !ev->recipient[0] || !ev->purpose || !ev->purpose[0])) {
        pgs_codec_check_errf(errstr, errstr_size,
                             "action DISCLOSE requires recipient and purpose (AuditEvent v2)");
        return PGS_E_VALIDATE_DISCLOSURE;
    }
    return PGS_OK;
}

/* Strict on purpose (no whitespace, padding required, unused bits zero):
 * two different texts must never decode to the same bytes, or a producer's
 * mistake would silently change a stored value. EVP_DecodeBlock is lenient
 * (it skips surrounding whitespace and reads '=' anywhere as zero bits), so
 * a text is accepted only if encoding its bytes again gives it back exactly:
 * that one comparison rules out every non-canonical spelling. */
int pgs_codec_check_base64_decode(pgs_arena_t *arena, const char *in, size_t len, const char **out,
                                  size_t *out_len)
{
    if (len % 4 != 0 || len > INT_MAX)
        return -1;
    unsigned char *dst = pgs_arena_alloc(arena, len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(dst, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3)
        return -1;
    /* EVP_DecodeBlock counts the zero bytes the padding stands for */
    size_t pad = 0;
    if (len > 0 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    char *again = pgs_xalloc_malloc(len + 1);
    int back = EVP_EncodeBlock((unsigned char *)again, dst, n - (int)pad);
    int same = back == (int)len && memcmp(again, in, len) == 0;
    free(again);
    if (!same)
        return -1;
    dst[n - pad] = '\0';
    *out = (const char *)dst;
    *out_len = (size_t)n - pad;
    return 0;
}

char *pgs_codec_check_base64_encode(const void *in, size_t len)
{
    if (len > INT_MAX / 4 * 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}
