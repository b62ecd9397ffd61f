/* The contract's JSON form of WriteCommand and AuditEvent, both ways. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"
#include "common/hash.h"

typedef struct {
    pgs_arena_t *arena;
    char *errstr;
    size_t errstr_size;
} jctx_t;

static pgs_err_t jfail(jctx_t *c, pgs_err_t err, const char *field, const char *why)
{
    pgs_codec_check_errf(c->errstr, c->errstr_size, "field '%s': %s", field, why);
    return err;
}

/* A name is quoted in an error only where the contract has field names
 * (the top level; key, data and details maps) and only if it is a plain
 * identifier: a name further down is part of a value and may be PHI. */
static int jname_quotable(const char *s, size_t len)
{
    if (!s || len == 0 || len > 63)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
              (i > 0 && ch >= '0' && ch <= '9')))
            return 0;
    }
    return 1;
}

static int jname_is(const char *s, size_t len, const char *name)
{
    return s && len == strlen(name) && memcmp(s, name, len) == 0;
}

/* One open object or array: the name last read in it, if an object. */
typedef struct {
    const char *name;
    size_t len;
    int is_object;
} jlevel_t;

/* jansson stops right after the repeated name's closing quote (@p end);
 * the text before it was read without error, so a scan of its brackets
 * and strings finds the names on the path down to the repeated one. */
static void jdup_describe(const char *buf, size_t end, int line, int column, char *errstr,
                          size_t errstr_size)
{
    enum { MAX_DEPTH = 2 };
    jlevel_t lv[MAX_DEPTH] = {{0}};
    int depth = 0, want_name = 0;
    for (size_t i = 0; i < end; i++) {
        char ch = buf[i];
        if (ch == '"') {
            size_t start = ++i;
            while (i < end && buf[i] != '"')
                i += buf[i] == '\\' ? 2 : 1;
            if (want_name && depth >= 1 && depth <= MAX_DEPTH) {
                lv[depth - 1].name = buf + start;
                lv[depth - 1].len = i - start;
            }
            want_name = 0;
        } else if (ch == '{' || ch == '[') {
            if (depth < MAX_DEPTH)
                lv[depth] = (jlevel_t){NULL, 0, ch == '{'};
            depth++;
            want_name = ch == '{';
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ',') {
            want_name = depth >= 1 && depth <= MAX_DEPTH && lv[depth - 1].is_object;
        }
    }
    const char *top = depth >= 1 ? lv[0].name : NULL, *sub = depth >= 2 ? lv[1].name : NULL;
    size_t top_len = lv[0].len, sub_len = lv[1].len;
    int top_ok = jname_quotable(top, top_len);
    int map = jname_is(top, top_len, "key") || jname_is(top, top_len, "data") ||
              jname_is(top, top_len, "details");
    if (depth == 1 && top_ok)
        pgs_codec_check_errf(errstr, errstr_size,
                             "field '%.*s' appears more than once (line %d column %d)",
                             (int)top_len, top, line, column);
    else if (depth == 2 && map && lv[0].is_object && sub)
        /* a column name from the message may be anything, PHI included:
         * its length and a digest tell two of them apart, never its text */
        pgs_codec_check_errf(
            errstr, errstr_size,
            "a name in '%.*s' appears more than once (%zu bytes, digest %08x; "
            "line %d column %d)",
            (int)top_len, top, sub_len,
            (unsigned)(pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, sub, sub_len) >> 32), line, column);
    else if (depth >= 2 && top_ok)
        pgs_codec_check_errf(
            errstr, errstr_size,
            "a field name appears more than once inside '%.*s' (line %d column %d)", (int)top_len,
            top, line, column);
    else
        pgs_codec_check_errf(errstr, errstr_size,
                             "a field name appears more than once (line %d column %d)", line,
                             column);
}

/* jansson's error text quotes the input near the error ("near '...'"),
 * which may be PHI: only the position is reported. Duplicated names are
 * refused at every depth: jansson's default keeps the last copy, so
 * "op":"INSERT",...,"op":"DELETE" would delete, and a second clinic_id
 * would write under a clinic that a first-wins gateway never checked. */
static json_t *jparse(const void *buf, size_t len, pgs_err_t *err, char *errstr, size_t errstr_size)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        switch (json_error_code(&je)) {
        case json_error_duplicate_key:
            *err = PGS_E_DECODE_DUPLICATE_FIELD;
            jdup_describe(buf,
                          je.position > 0 && (size_t)je.position <= len ? (size_t)je.position : 0,
                          je.line, je.column, errstr, errstr_size);
            break;
        case json_error_invalid_utf8:
            *err = PGS_E_DECODE_BAD_UTF8;
            pgs_codec_check_errf(errstr, errstr_size, "JSON is not valid UTF-8 (byte %d)",
                                 je.position);
            break;
        case json_error_null_character:
        case json_error_null_byte_in_key:
            *err = PGS_E_DECODE_NUL_BYTE;
            pgs_codec_check_errf(errstr, errstr_size, "JSON contains a NUL byte (byte %d)",
                                 je.position);
            break;
        case json_error_numeric_overflow:
            *err = PGS_E_DECODE_JSON_SYNTAX;
            pgs_codec_check_errf(errstr, errstr_size,
                                 "JSON number out of range (64-bit integer or double) at line %d "
                                 "column %d",
                                 je.line, je.column);
            break;
        default:
            *err = PGS_E_DECODE_JSON_SYNTAX;
            pgs_codec_check_errf(errstr, errstr_size, "JSON syntax error at line %d column %d",
                                 je.line, je.column);
        }
        return NULL;
    }
    if (!json_is_object(root)) {
        *err = PGS_E_DECODE_WRONG_TYPE;
        pgs_codec_check_errf(errstr, errstr_size, "message is not a JSON object");
        json_decref(root);
        return NULL;
    }
    *err = PGS_OK;
    return root;
}

static pgs_err_t jtext(jctx_t *c, json_t *obj, const char *name, const char **out)
{
    json_t *j = json_object_get(obj, name);
    if (!j)
        return jfail(c, PGS_E_DECODE_MISSING_FIELD, name, "missing");
    if (!json_is_string(j))
        return jfail(c, PGS_E_DECODE_WRONG_TYPE, name, "not a string");
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    pgs_err_t err = pgs_codec_check_string(s, len, name, "string", c->errstr, c->errstr_size);
    if (err)
        return err;
    *out = pgs_arena_strndup(c->arena, s, len);
    return PGS_OK;
}

/* AuditEvent v2's optional text: NULL when missing or null. */
static pgs_err_t jtext_optional(jctx_t *c, json_t *obj, const char *name, const char **out)
{
    json_t *j = json_object_get(obj, name);
    *out = NULL;
    return !j || json_is_null(j) ? PGS_OK : jtext(c, obj, name, out);
}

static pgs_err_t jlong(jctx_t *c, json_t *obj, const char *name, int64_t *out)
{
    json_t *j = json_object_get(obj, name);
    if (!j)
        return jfail(c, PGS_E_DECODE_MISSING_FIELD, name, "missing");
    if (!json_is_integer(j))
        return jfail(c, PGS_E_DECODE_WRONG_TYPE, name, "not an integer");
    *out = (int64_t)json_integer_value(j);
    return PGS_OK;
}

static pgs_err_t jvalue(jctx_t *c, json_t *j, const char *field, pgs_value_t *v)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        v->type = PGS_VAL_NULL;
        return PGS_OK;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = PGS_VAL_BOOL;
        v->u.b = json_is_true(j);
        return PGS_OK;
    case JSON_INTEGER:
        v->type = PGS_VAL_LONG;
        v->u.l = (int64_t)json_integer_value(j);
        return PGS_OK;
    case JSON_REAL:
        v->type = PGS_VAL_DOUBLE;
        v->u.d = json_real_value(j);
        return PGS_OK;
    case JSON_STRING: {
        size_t len = json_string_length(j);
        pgs_err_t err = pgs_codec_check_string(json_string_value(j), len, field, "value", c->errstr,
                                               c->errstr_size);
        if (err)
            return err;
        v->type = PGS_VAL_STRING;
        v->u.s.ptr = pgs_arena_strndup(c->arena, json_string_value(j), len);
        v->u.s.len = len;
        return PGS_OK;
    }
    case JSON_OBJECT: { /* Avro's JSON union form, for bytes only */
        json_t *b = json_object_get(j, "bytes");
        if (json_object_size(j) == 1 && json_is_string(b)) {
            v->type = PGS_VAL_BYTES;
            if (pgs_codec_check_base64_decode(c->arena, json_string_value(b), json_string_length(b),
                                              &v->u.s.ptr, &v->u.s.len))
                return jfail(c, PGS_E_DECODE_BAD_BASE64, field, "bytes value is not base64");
            return PGS_OK;
        }
        break;
    }
    case JSON_ARRAY:
        break;
    }
    return jfail(c, PGS_E_DECODE_WRONG_TYPE, field,
                 "value is not null, boolean, number, string or {\"bytes\": base64}");
}

/* key/data (Value maps) and details (string map). */
static pgs_err_t jfields(jctx_t *c, json_t *obj, const char *name, int required, int strings_only,
                         pgs_field_t **out, size_t *cnt)
{
    json_t *m = json_object_get(obj, name);
    *out = NULL;
    *cnt = 0;
    if (!m)
        return required ? jfail(c, PGS_E_DECODE_MISSING_FIELD, name, "missing") : PGS_OK;
    if (!json_is_object(m))
        return jfail(c, PGS_E_DECODE_WRONG_TYPE, name, "not an object");
    size_t n = json_object_size(m), i = 0;
    pgs_field_t *f = n ? pgs_arena_alloc(c->arena, n * sizeof(*f)) : NULL;
    const char *key;
    size_t key_len;
    json_t *val;
    json_object_keylen_foreach(m, key, key_len, val)
    {
        pgs_err_t err =
            pgs_codec_check_string(key, key_len, name, "map key", c->errstr, c->errstr_size);
        if (err)
            return err;
        f[i].name = pgs_arena_strndup(c->arena, key, key_len);
        if (strings_only && !json_is_string(val))
            return jfail(c, PGS_E_DECODE_WRONG_TYPE, name, "value is not a string");
        if ((err = jvalue(c, val, name, &f[i].value)))
            return err;
        i++;
    }
    *out = f;
    *cnt = i;
    return PGS_OK;
}

pgs_err_t pgs_codec_json_to_command(const void *buf, size_t len, pgs_command_t *cmd, char *errstr,
                                    size_t errstr_size)
{
    jctx_t c = {cmd->arena, errstr, errstr_size};
    pgs_err_t err;
    const char *op;
    json_t *root = jparse(buf, len, &err, errstr, errstr_size);
    if (!root)
        return err;
    if ((err = jtext(&c, root, "command_id", &cmd->command_id)) ||
        (err = jtext(&c, root, "clinic_id", &cmd->clinic_id)) ||
        (err = jtext(&c, root, "actor", &cmd->actor)) ||
        (err = jtext(&c, root, "entity", &cmd->entity)) || (err = jtext(&c, root, "op", &op)))
        goto out;
    if (pgs_command_op_parse(op, &cmd->op)) {
        err = jfail(&c, PGS_E_DECODE_BAD_OP, "op", "unknown operation");
        goto out;
    }
    if ((err = jfields(&c, root, "key", 1, 0, &cmd->key, &cmd->key_cnt)) ||
        (err = jfields(&c, root, "data", 0, 0, &cmd->data, &cmd->data_cnt)))
        goto out;
    json_t *ev = json_object_get(root, "expected_version");
    cmd->has_expected_version = 0;
    if (ev && !json_is_null(ev)) {
        if (!json_is_integer(ev)) {
            err = jfail(&c, PGS_E_DECODE_WRONG_TYPE, "expected_version", "not an integer or null");
            goto out;
        }
        cmd->has_expected_version = 1;
        cmd->expected_version = (int64_t)json_integer_value(ev);
    }
    err = jlong(&c, root, "issued_at", &cmd->issued_at_ms);
out:
    json_decref(root);
    return err;
}

pgs_err_t pgs_codec_json_to_audit(const void *buf, size_t len, pgs_audit_event_t *ev, char *errstr,
                                  size_t errstr_size)
{
    jctx_t c = {ev->arena, errstr, errstr_size};
    pgs_err_t err;
    json_t *root = jparse(buf, len, &err, errstr, errstr_size);
    if (!root)
        return err;
    if ((err = jtext(&c, root, "event_id", &ev->event_id)) ||
        (err = jtext(&c, root, "clinic_id", &ev->clinic_id)) ||
        (err = jtext(&c, root, "actor", &ev->actor)) ||
        (err = jtext(&c, root, "action", &ev->action)) ||
        (err = jtext(&c, root, "resource_type", &ev->resource_type)) ||
        (err = jtext(&c, root, "resource_id", &ev->resource_id)) ||
        (err = jtext(&c, root, "outcome", &ev->outcome)))
        goto out;
    if (strcmp(ev->outcome, "SUCCESS") && strcmp(ev->outcome, "DENIED") &&
        strcmp(ev->outcome, "ERROR")) {
        err = jfail(&c, PGS_E_DECODE_WRONG_TYPE, "outcome", "not SUCCESS, DENIED or ERROR");
        goto out;
    }
    if ((err = jlong(&c, root, "occurred_at", &ev->occurred_at_ms)) ||
        (err = jtext(&c, root, "source", &ev->source)))
        goto out;
    if ((err = jfields(&c, root, "details", 0, 1, &ev->details, &ev->details_cnt)) ||
        (err = jtext_optional(&c, root, "recipient", &ev->recipient)) ||
        (err = jtext_optional(&c, root, "purpose", &ev->purpose)))
        goto out;
    err = jtext_optional(&c, root, "description", &ev->description);
out:
    json_decref(root);
    return err;
}

/* Encoding: build with jansson, dump compact. json_*n() refuse text that is
 * not UTF-8, and json_real() refuses NaN/inf, so neither can produce JSON
 * that the decoder would reject: the encoder returns NULL instead. */
static int jset(json_t *obj, const char *name, json_t *v)
{
    return v ? json_object_set_new(obj, name, v) : -1;
}

static json_t *jtext_new(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *jvalue_new(const pgs_value_t *v)
{
    switch (v->type) {
    case PGS_VAL_NULL:
        return json_null();
    case PGS_VAL_BOOL:
        return json_boolean(v->u.b);
    case PGS_VAL_LONG:
        return json_integer(v->u.l);
    case PGS_VAL_DOUBLE:
        return json_real(v->u.d);
    case PGS_VAL_STRING:
        return json_stringn(v->u.s.ptr ? v->u.s.ptr : "", v->u.s.ptr ? v->u.s.len : 0);
    case PGS_VAL_BYTES: {
        char *b64 = pgs_codec_check_base64_encode(v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len);
        json_t *o = b64 ? json_pack("{s:s}", "bytes", b64) : NULL;
        free(b64);
        return o;
    }
    }
    return NULL;
}

static json_t *jfields_new(const pgs_field_t *f, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        if (!f[i].name || jset(o, f[i].name, jvalue_new(&f[i].value))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static char *jdump(json_t *root, int ok)
{
    char *out = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return out;
}

char *pgs_codec_json_from_command(const pgs_command_t *cmd)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    int ok = !jset(root, "command_id", jtext_new(cmd->command_id)) &&
             !jset(root, "clinic_id", jtext_new(cmd->clinic_id)) &&
             !jset(root, "actor", jtext_new(cmd->actor)) &&
             !jset(root, "entity", jtext_new(cmd->entity)) && (unsigned)cmd->op <= PGS_OP_DELETE &&
             !jset(root, "op", json_string(pgs_command_op_name(cmd->op))) &&
             !jset(root, "key", jfields_new(cmd->key, cmd->key_cnt)) &&
             !jset(root, "data", jfields_new(cmd->data, cmd->data_cnt)) &&
             !jset(root, "expected_version",
                   cmd->has_expected_version ? json_integer(cmd->expected_version) : json_null()) &&
             !jset(root, "issued_at", json_integer(cmd->issued_at_ms));
    return jdump(root, ok);
}

char *pgs_codec_json_from_audit(const pgs_audit_event_t *ev)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    int ok = !jset(root, "event_id", jtext_new(ev->event_id)) &&
             !jset(root, "clinic_id", jtext_new(ev->clinic_id)) &&
             !jset(root, "actor", jtext_new(ev->actor)) &&
             !jset(root, "action", jtext_new(ev->action)) &&
             !jset(root, "resource_type", jtext_new(ev->resource_type)) &&
             !jset(root, "resource_id", jtext_new(ev->resource_id)) &&
             !jset(root, "outcome", jtext_new(ev->outcome)) &&
             !jset(root, "occurred_at", json_integer(ev->occurred_at_ms)) &&
             !jset(root, "source", jtext_new(ev->source)) &&
             !jset(root, "details", jfields_new(ev->details, ev->details_cnt)) &&
             (!ev->recipient || !jset(root, "recipient", jtext_new(ev->recipient))) &&
             (!ev->purpose || !jset(root, "purpose", jtext_new(ev->purpose))) &&
             (!ev->description || !jset(root, "description", jtext_new(ev->description)));
    return jdump(root, ok);
}
