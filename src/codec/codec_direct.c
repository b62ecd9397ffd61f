/* WriteCommand read straight from Avro binary into the command's arena. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"

/* avro-c's generic read builds a value tree (a map entry, a union branch, a
 * string copy each) that pgs_codec_avro_to_command then walks by field name
 * and copies again: about three quarters of the worker's decoding cost. A
 * plan, compiled once per writer schema, names what each writer field is
 * for; the decoder then reads the bytes once, in writer order, into the
 * command. It makes the checks of pgs_codec_scan_avro as it goes (bounds,
 * lengths, UTF-8 and NUL bytes of strings, repeated map keys, enum and
 * union ranges, trailing bytes); when one fails, the scan runs to name the
 * problem as it always has. A writer schema with fields the reader does not
 * have is scanned first, since those fields are only skipped here. A writer
 * schema whose fields the plan cannot express (another type for a known
 * field, a required field missing, another Op order) gets no plan and is
 * read by avro-c, with its error texts. */

typedef enum {
    SLOT_SKIP = 0, /* a writer field the reader does not have */
    SLOT_COMMAND_ID,
    SLOT_CLINIC_ID,
    SLOT_ACTOR,
    SLOT_ENTITY,
    SLOT_OP,
    SLOT_KEY,
    SLOT_DATA,
    SLOT_EXPECTED_VERSION,
    SLOT_ISSUED_AT,
    SLOT_COUNT
} slot_t;

static const char *const slot_names[SLOT_COUNT] = {
    NULL,  "command_id", "clinic_id",        "actor",     "entity", "op",
    "key", "data",       "expected_version", "issued_at",
};

struct pgs_codec_plan_s {
    avro_schema_t writer; /* borrowed from the codec, which outlives the plan */
    int has_skip;         /* a writer field the reader lacks: scanned first */
    size_t nfields;
    struct {
        slot_t slot;
        avro_schema_t schema; /* the writer's, for SLOT_SKIP */
    } field[];
};

/* The Value union in pgs_value_type_t's order. */
static int is_value_union(avro_schema_t u)
{
    static const avro_type_t order[] = {AVRO_NULL,   AVRO_BOOLEAN, AVRO_INT64,
                                        AVRO_DOUBLE, AVRO_STRING,  AVRO_BYTES};
    if (avro_typeof(u) != AVRO_UNION || avro_schema_union_size(u) != 6)
        return 0;
    for (int i = 0; i < 6; i++)
        if (avro_typeof(avro_schema_union_branch(u, i)) != order[i])
            return 0;
    return 1;
}

static int slot_type_ok(slot_t slot, avro_schema_t s)
{
    switch (slot) {
    case SLOT_COMMAND_ID:
    case SLOT_CLINIC_ID:
    case SLOT_ACTOR:
    case SLOT_ENTITY:
        return avro_typeof(s) == AVRO_STRING;
    case SLOT_OP:
        if (avro_typeof(s) != AVRO_ENUM || avro_schema_enum_number_of_symbols(s) != 4)
            return 0;
        for (int i = 0; i < 4; i++) {
            const char *sym = avro_schema_enum_get(s, i);
            if (!sym || strcmp(sym, pgs_command_op_name((pgs_op_t)i)) != 0)
                return 0;
        }
        return 1;
    case SLOT_KEY:
    case SLOT_DATA:
        return avro_typeof(s) == AVRO_MAP && is_value_union(avro_schema_map_values(s));
    case SLOT_EXPECTED_VERSION:
        return avro_typeof(s) == AVRO_UNION && avro_schema_union_size(s) == 2 &&
               avro_typeof(avro_schema_union_branch(s, 0)) == AVRO_NULL &&
               avro_typeof(avro_schema_union_branch(s, 1)) == AVRO_INT64;
    case SLOT_ISSUED_AT:
        return avro_typeof(s) == AVRO_INT64;
    default:
        return 1;
    }
}

pgs_codec_plan_t *pgs_codec_plan_command(avro_schema_t writer)
{
    if (!writer || avro_typeof(writer) != AVRO_RECORD)
        return NULL;
    size_t n = avro_schema_record_size(writer);
    pgs_codec_plan_t *plan = calloc(1, sizeof(*plan) + n * sizeof(plan->field[0]));
    if (!plan)
        return NULL;
    plan->writer = writer;
    plan->nfields = n;
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = avro_schema_record_field_name(writer, (int)i);
        avro_schema_t fs = avro_schema_record_field_get_by_index(writer, (int)i);
        slot_t slot = SLOT_SKIP;
        for (int k = 1; k < SLOT_COUNT; k++)
            if (name && strcmp(name, slot_names[k]) == 0)
                slot = (slot_t)k;
        if (!fs || !slot_type_ok(slot, fs)) {
            free(plan);
            return NULL;
        }
        plan->field[i].slot = slot;
        plan->field[i].schema = fs;
        plan->has_skip |= slot == SLOT_SKIP;
        seen |= 1u << slot;
    }
    /* data and expected_version have reader defaults; the rest are required */
    unsigned required = (1u << SLOT_COUNT) - 2;
    required &= ~((1u << SLOT_DATA) | (1u << SLOT_EXPECTED_VERSION));
    if ((seen & required) != required) {
        free(plan);
        return NULL;
    }
    return plan;
}

void pgs_codec_plan_free(pgs_codec_plan_t *plan)
{
    free(plan);
}

int pgs_codec_plan_needs_scan(const pgs_codec_plan_t *plan)
{
    return plan->has_skip;
}

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    pgs_arena_t *arena;
} rd_t;

static int rd_long(rd_t *r, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p == r->end)
            return -1;
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
            return 0;
        }
    }
    return -1;
}

static int rd_span(rd_t *r, const unsigned char **p, size_t *len)
{
    int64_t n;
    if (rd_long(r, &n) || n < 0 || (uint64_t)n > (size_t)(r->end - r->p))
        return -1;
    *p = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

/* @p is_string: the scan's checks of a string (pgs_codec_check_string) */
static int rd_text(rd_t *r, int is_string, const char **out, size_t *len)
{
    const unsigned char *p;
    size_t n;
    if (rd_span(r, &p, &n))
        return -1;
    if (is_string && (n > PGS_MAX_STRING_BYTES || memchr(p, '\0', n) ||
                      !pgs_codec_check_utf8((const char *)p, n)))
        return -1;
    *out = pgs_arena_strndup(r->arena, (const char *)p, n);
    if (len)
        *len = n;
    return 0;
}

static int rd_value(rd_t *r, pgs_value_t *v)
{
    int64_t branch;
    if (rd_long(r, &branch) || branch < 0 || branch > PGS_VAL_BYTES)
        return -1;
    v->type = (pgs_value_type_t)branch;
    switch (v->type) {
    case PGS_VAL_NULL:
        return 0;
    case PGS_VAL_BOOL:
        if (r->p == r->end || *r->p > 1)
            return -1;
        v->u.b = *r->p++;
        return 0;
    case PGS_VAL_LONG:
        return rd_long(r, &v->u.l);
    case PGS_VAL_DOUBLE: {
        if (r->end - r->p < 8)
            return -1;
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--)
            bits = bits << 8 | r->p[i]; /* Avro doubles are little-endian */
        memcpy(&v->u.d, &bits, sizeof(bits));
        r->p += 8;
        return 0;
    }
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        return rd_text(r, v->type == PGS_VAL_STRING, &v->u.s.ptr, &v->u.s.len);
    }
    return -1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A map key given twice is refused, as the scan refuses it (keys hold no
 * NUL byte, so strcmp compares them whole): pairs for a few keys, sorted
 * names beyond, n log n for any input. */
static int names_unique(const pgs_field_t *f, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(f[i].name, f[j].name) == 0)
                    return 0;
        return 1;
    }
    const char **names = malloc(n * sizeof(*names));
    if (!names)
        return 0;
    for (size_t i = 0; i < n; i++)
        names[i] = f[i].name;
    qsort(names, n, sizeof(*names), name_cmp);
    int unique = 1;
    for (size_t i = 1; i < n && unique; i++)
        unique = strcmp(names[i - 1], names[i]) != 0;
    free(names);
    return unique;
}

/* A map of Values, block by block; a count beyond the bytes left is
 * refused before anything is allocated, as the scan refuses it. */
static int rd_fields(rd_t *r, pgs_field_t **out, size_t *cnt)
{
    pgs_field_t *f = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        int64_t count, size;
        if (rd_long(r, &count))
            return -1;
        if (count == 0)
            break;
        if (count < 0) {
            if (count == INT64_MIN || rd_long(r, &size))
                return -1;
            count = -count;
        }
        if ((uint64_t)count > (size_t)(r->end - r->p))
            return -1;
        if (n + (size_t)count > cap) {
            size_t want = n + (size_t)count;
            pgs_field_t *g = pgs_arena_alloc(r->arena, want * sizeof(*g));
            if (n)
                memcpy(g, f, n * sizeof(*g));
            f = g;
            cap = want;
        }
        for (int64_t i = 0; i < count; i++, n++) {
            f[n].col = 0;
            if (rd_text(r, 1, &f[n].name, NULL) || rd_value(r, &f[n].value))
                return -1;
        }
    }
    if (!names_unique(f, n))
        return -1;
    *out = f;
    *cnt = n;
    return 0;
}

static int skip_value(rd_t *r, avro_schema_t s);

static int skip_blocks(rd_t *r, avro_schema_t items, int is_map)
{
    for (;;) {
        int64_t count, size;
        if (rd_long(r, &count))
            return -1;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN || rd_long(r, &size))
                return -1;
            count = -count;
        }
        if ((uint64_t)count > (size_t)(r->end - r->p))
            return -1;
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *p;
            size_t len;
            if ((is_map && rd_span(r, &p, &len)) || skip_value(r, items))
                return -1;
        }
    }
}

static int skip_bytes(rd_t *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return -1;
    r->p += n;
    return 0;
}

static int skip_value(rd_t *r, avro_schema_t s)
{
    int64_t n;
    const unsigned char *p;
    size_t len;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        return skip_bytes(r, 1);
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_ENUM:
        return rd_long(r, &n);
    case AVRO_FLOAT:
        return skip_bytes(r, 4);
    case AVRO_DOUBLE:
        return skip_bytes(r, 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        return rd_span(r, &p, &len);
    case AVRO_FIXED:
        return skip_bytes(r, (size_t)avro_schema_fixed_size(s));
    case AVRO_UNION:
        if (rd_long(r, &n) || n < 0 || (uint64_t)n >= avro_schema_union_size(s))
            return -1;
        return skip_value(r, avro_schema_union_branch(s, (int)n));
    case AVRO_MAP:
        return skip_blocks(r, avro_schema_map_values(s), 1);
    case AVRO_ARRAY:
        return skip_blocks(r, avro_schema_array_items(s), 0);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (skip_value(r, avro_schema_record_field_get_by_index(s, (int)i)))
                return -1;
        return 0;
    default:
        return -1;
    }
}

static int rd_field(rd_t *r, const pgs_codec_plan_t *plan, size_t i, pgs_command_t *cmd)
{
    int64_t v;
    switch (plan->field[i].slot) {
    case SLOT_COMMAND_ID:
        return rd_text(r, 1, &cmd->command_id, NULL);
    case SLOT_CLINIC_ID:
        return rd_text(r, 1, &cmd->clinic_id, NULL);
    case SLOT_ACTOR:
        return rd_text(r, 1, &cmd->actor, NULL);
    case SLOT_ENTITY:
        return rd_text(r, 1, &cmd->entity, NULL);
    case SLOT_OP:
        if (rd_long(r, &v) || v < 0 || v > PGS_OP_DELETE)
            return -1;
        cmd->op = (pgs_op_t)v;
        return 0;
    case SLOT_KEY:
        return rd_fields(r, &cmd->key, &cmd->key_cnt);
    case SLOT_DATA:
        return rd_fields(r, &cmd->data, &cmd->data_cnt);
    case SLOT_EXPECTED_VERSION:
        if (rd_long(r, &v) || (v != 0 && v != 1))
            return -1;
        cmd->has_expected_version = (int)v;
        return v ? rd_long(r, &cmd->expected_version) : 0;
    case SLOT_ISSUED_AT:
        return rd_long(r, &cmd->issued_at_ms);
    default:
        return skip_value(r, plan->field[i].schema);
    }
}

pgs_err_t pgs_codec_direct_command(const pgs_codec_plan_t *plan, const void *body, size_t len,
                                   pgs_command_t *cmd, char *errstr, size_t errstr_size)
{
    rd_t r = {body, (const unsigned char *)body + len, cmd->arena};
    cmd->data = NULL;
    cmd->data_cnt = 0;
    cmd->has_expected_version = 0;
    cmd->expected_version = 0;
    for (size_t i = 0; i < plan->nfields; i++) {
        if (rd_field(&r, plan, i, cmd)) {
            pgs_err_t err = pgs_codec_scan_avro(plan->writer, body, len, errstr, errstr_size);
            if (err)
                return err; /* what the scan says of it, in its words */
            const char *name = slot_names[plan->field[i].slot];
            pgs_codec_check_errf(errstr, errstr_size,
                                 "field '%s': not readable from the writer schema",
                                 name ? name : "(not a WriteCommand field)");
            return PGS_E_DECODE_AVRO;
        }
    }
    if (r.p != r.end) {
        pgs_err_t err = pgs_codec_scan_avro(plan->writer, body, len, errstr, errstr_size);
        if (err)
            return err;
        pgs_codec_check_errf(errstr, errstr_size, "%zu trailing bytes after the record",
                             (size_t)(r.end - r.p));
        return PGS_E_DECODE_AVRO;
    }
    return PGS_OK;
}
