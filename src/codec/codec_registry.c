/* Writer schemas from a Schema Registry: resolved through the codec's
 * resolver once per id, checked against the reader schema (the current
 * shipped version of the record) and kept, parsed, for the codec's life. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_internal.h"

/* Reader fields a writer may lack: the reader schema gives them a default
 * (codec_avro.c applies it). Every other reader field must be in the writer. */
static const char *const command_optional[] = {"data", "expected_version", NULL};
static const char *const audit_optional[] = {"details", "recipient", "purpose", "description",
                                             NULL};

static int listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

/* The type of @p record's field @p name, or NULL: avro-c's own
 * avro_schema_record_field_get reads an unset variable for a name the
 * record lacks, so the index is looked up first. */
static avro_schema_t field_type(avro_schema_t record, const char *name)
{
    int i = avro_schema_record_field_get_index(record, name);
    return i >= 0 ? avro_schema_record_field_get_by_index(record, i) : NULL;
}

static avro_schema_t deref(avro_schema_t s)
{
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static int same_name(avro_schema_t a, avro_schema_t b)
{
    const char *na = avro_schema_namespace(a), *nb = avro_schema_namespace(b);
    return strcmp(avro_schema_type_name(a), avro_schema_type_name(b)) == 0 &&
           strcmp(na ? na : "", nb ? nb : "") == 0;
}

/* The writer's type reads as the reader's with no conversion: the same
 * shape, names and enum symbols in the same order (the decoder maps enum
 * and union indexes directly). Type promotions are not made. */
static int same_type(avro_schema_t w, avro_schema_t r, int depth)
{
    w = deref(w);
    r = deref(r);
    if (!w || !r || depth > 32 || avro_typeof(w) != avro_typeof(r))
        return 0;
    switch (avro_typeof(w)) {
    case AVRO_RECORD:
        if (!same_name(w, r) || avro_schema_record_size(w) != avro_schema_record_size(r))
            return 0;
        for (size_t i = 0; i < avro_schema_record_size(r); i++) {
            const char *fname = avro_schema_record_field_name(r, (int)i);
            avro_schema_t wf = field_type(w, fname);
            if (!wf || !same_type(wf, avro_schema_record_field_get_by_index(r, (int)i), depth + 1))
                return 0;
        }
        return 1;
    case AVRO_ENUM:
        if (!same_name(w, r) ||
            avro_schema_enum_number_of_symbols(w) != avro_schema_enum_number_of_symbols(r))
            return 0;
        for (int i = 0; i < avro_schema_enum_number_of_symbols(r); i++)
            if (strcmp(avro_schema_enum_get(w, i), avro_schema_enum_get(r, i)) != 0)
                return 0;
        return 1;
    case AVRO_UNION:
        if (avro_schema_union_size(w) != avro_schema_union_size(r))
            return 0;
        for (size_t i = 0; i < avro_schema_union_size(r); i++)
            if (!same_type(avro_schema_union_branch(w, (int)i), avro_schema_union_branch(r, (int)i),
                           depth + 1))
                return 0;
        return 1;
    case AVRO_MAP:
        return same_type(avro_schema_map_values(w), avro_schema_map_values(r), depth + 1);
    case AVRO_ARRAY:
        return same_type(avro_schema_array_items(w), avro_schema_array_items(r), depth + 1);
    case AVRO_FIXED:
        return same_name(w, r) && avro_schema_fixed_size(w) == avro_schema_fixed_size(r);
    default:
        return 1; /* the same primitive */
    }
}

/* Schema resolution of a writer record into the reader record: every
 * reader field is in the writer with the same type, or has a default;
 * writer fields the reader lacks are skipped. */
static int compatible(avro_schema_t w, avro_schema_t r, const char *const *optional, char *why,
                      size_t why_size)
{
    for (size_t i = 0; i < avro_schema_record_size(r); i++) {
        const char *fname = avro_schema_record_field_name(r, (int)i);
        avro_schema_t wf = field_type(w, fname);
        if (!wf) {
            if (listed(optional, fname))
                continue;
            snprintf(why, why_size,
                     "reader field '%s' is missing from the writer and has no default", fname);
            return 0;
        }
        if (!same_type(wf, avro_schema_record_field_get_by_index(r, (int)i), 0)) {
            snprintf(why, why_size, "field '%s' has another type in the writer schema", fname);
            return 0;
        }
    }
    return 1;
}

void pgs_codec_set_resolver(pgs_codec_t *codec, pgs_codec_resolve_fn fn, void *opaque)
{
    codec->resolve = fn;
    codec->resolve_opaque = opaque;
}

int pgs_codec_has_resolver(const pgs_codec_t *codec)
{
    return codec->resolve != NULL;
}

void pgs_codec_registry_free(pgs_codec_t *codec)
{
    for (size_t i = 0; i < codec->writers_cnt; i++) {
        pgs_codec_writer_t *wr = &codec->writers[i];
        if (wr->value.iface)
            avro_value_decref(&wr->value);
        if (wr->iface)
            avro_value_iface_decref(wr->iface);
        if (wr->schema)
            avro_schema_decref(wr->schema);
        pgs_codec_plan_free(wr->plan);
    }
    free(codec->writers);
    codec->writers = NULL;
    codec->writers_cnt = 0;
}

/* Parses and keeps the writer schema of @p id. NULL (with @p errstr) when
 * its text is not an Avro schema pgscribe can read. */
static pgs_codec_writer_t *writer_add(pgs_codec_t *codec, int32_t id, const char *text,
                                      char *errstr, size_t errstr_size)
{
    avro_schema_t schema = NULL;
    if (avro_schema_from_json_length(text, strlen(text), &schema)) {
        pgs_codec_check_errf(errstr, errstr_size, "schema id %d: not a valid Avro schema", (int)id);
        return NULL;
    }
    pgs_codec_writer_t *grown =
        realloc(codec->writers, (codec->writers_cnt + 1) * sizeof(*codec->writers));
    if (!grown)
        abort();
    codec->writers = grown;
    pgs_codec_writer_t *wr = &codec->writers[codec->writers_cnt];
    memset(wr, 0, sizeof(*wr));
    wr->id = id;
    wr->schema = schema;
    if (is_avro_record(schema)) {
        const char *ns = avro_schema_namespace(schema);
        snprintf(wr->record, sizeof(wr->record), "%s%s%s", ns ? ns : "", ns ? "." : "",
                 avro_schema_type_name(schema));
        wr->iface = avro_generic_class_from_schema(schema);
        if (!wr->iface || avro_generic_value_new(wr->iface, &wr->value)) {
            if (wr->iface)
                avro_value_iface_decref(wr->iface);
            avro_schema_decref(schema);
            pgs_codec_check_errf(errstr, errstr_size, "schema id %d: cannot be read", (int)id);
            return NULL;
        }
        wr->plan = pgs_codec_plan_command(schema);
    }
    codec->writers_cnt++;
    return wr;
}

pgs_err_t pgs_codec_registry_writer(pgs_codec_t *codec, int32_t id, int reader_id, const char *what,
                                    avro_schema_t *schema, avro_value_t **value,
                                    pgs_codec_plan_t **plan, char *errstr, size_t errstr_size)
{
    pgs_codec_writer_t *wr = NULL;
    for (size_t i = 0; i < codec->writers_cnt && !wr; i++)
        if (codec->writers[i].id == id)
            wr = &codec->writers[i];
    if (!wr) {
        const char *text = NULL;
        char why[256] = "";
        int rc = id < 0 ? 1 : codec->resolve(codec->resolve_opaque, id, &text, why, sizeof(why));
        if (rc < 0) {
            pgs_codec_check_errf(errstr, errstr_size, "%s", why);
            return PGS_E_REGISTRY_UNAVAILABLE;
        }
        if (rc > 0 || !text) {
            if (why[0])
                pgs_codec_check_errf(errstr, errstr_size, "%s", why);
            else
                pgs_codec_check_errf(errstr, errstr_size,
                                     "schema id %d is not in the schema registry", (int)id);
            return PGS_E_DECODE_UNKNOWN_SCHEMA;
        }
        if (!(wr = writer_add(codec, id, text, errstr, errstr_size)))
            return PGS_E_DECODE_SCHEMA_INCOMPATIBLE;
    }
    avro_schema_t reader = codec->schema[reader_id];
    char full[160];
    snprintf(full, sizeof(full), "%s.%s", avro_schema_namespace(reader),
             avro_schema_type_name(reader));
    if (!wr->iface || strcmp(wr->record, full) != 0) {
        pgs_codec_check_errf(errstr, errstr_size, "schema id %d is not a %s schema", (int)id, what);
        return PGS_E_DECODE_UNKNOWN_SCHEMA;
    }
    if (wr->checked_reader != reader_id) { /* once per writer and reader */
        wr->checked_reader = reader_id;
        wr->compatible = compatible(wr->schema, reader,
                                    reader_id == PGS_SCHEMA_ID_WRITE_COMMAND_V2 ? command_optional
                                                                                : audit_optional,
                                    wr->why, sizeof(wr->why));
    }
    if (!wr->compatible) {
        pgs_codec_check_errf(errstr, errstr_size, "schema id %d cannot be read as %s: %s", (int)id,
                             what, wr->why);
        return PGS_E_DECODE_SCHEMA_INCOMPATIBLE;
    }
    *schema = wr->schema;
    *value = &wr->value;
    *plan = reader_id == PGS_SCHEMA_ID_WRITE_COMMAND_V2 ? wr->plan : NULL;
    return PGS_OK;
}
