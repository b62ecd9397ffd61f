/* Codec internals shared by the codec*.c files; not part of the public API. */
#ifndef PGSCRIBE_CODEC_INTERNAL_H
#define PGSCRIBE_CODEC_INTERNAL_H

#include <avro.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

/* Schema ids run 1..PGS_CODEC_MAX_ID; slot 0 is unused. */
#define PGS_CODEC_MAX_ID 7

/* codec_direct.c: how a writer schema's fields map to a WriteCommand. */
typedef struct pgs_codec_plan_s pgs_codec_plan_t;

/* A writer schema a registry resolved, by the registry's id. */
typedef struct {
    int32_t id;
    avro_schema_t schema;
    avro_value_iface_t *iface; /* NULL when the schema is no record */
    avro_value_t value;        /* reused for every message of this id */
    pgs_codec_plan_t *plan;    /* NULL: not a WriteCommand the plan can read */
    char record[160];          /* the record's full name */
    int checked_reader;        /* the reader id compatibility was checked for (0: none) */
    int compatible;
    char why[200]; /* when not compatible */
} pgs_codec_writer_t;

struct pgs_codec_s {
    avro_schema_t schema[PGS_CODEC_MAX_ID + 1];
    avro_value_iface_t *iface[PGS_CODEC_MAX_ID + 1];
    avro_value_t value[PGS_CODEC_MAX_ID + 1];     /* reused for every message */
    pgs_codec_plan_t *plan[PGS_CODEC_MAX_ID + 1]; /* WriteCommand ids only */
    int avro_generic;             /* every WriteCommand read by avro-c (tests compare) */
    avro_reader_t reader;         /* re-pointed at each message */
    pgs_codec_resolve_fn resolve; /* NULL: the shipped ids only */
    void *resolve_opaque;
    pgs_codec_writer_t *writers; /* resolved so far */
    size_t writers_cnt;
};

/* codec_registry.c: the writer schema of a registry id for the reader
 * @p reader_id (WriteCommand or AuditEvent, current version). */
pgs_err_t pgs_codec_registry_writer(pgs_codec_t *codec, int32_t id, int reader_id, const char *what,
                                    avro_schema_t *schema, avro_value_t **value,
                                    pgs_codec_plan_t **plan, char *errstr, size_t errstr_size);
void pgs_codec_registry_free(pgs_codec_t *codec);

/* codec_check.c: limits and well-formedness shared by both encodings. */
void pgs_codec_check_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pgs_codec_check_utf8(const char *s, size_t len);
int pgs_codec_check_uuid(const char *s, size_t len);
pgs_err_t pgs_codec_check_string(const char *s, size_t len, const char *field, const char *what,
                                 char *errstr, size_t errstr_size);
pgs_err_t pgs_codec_check_command(const pgs_command_t *cmd, char *errstr, size_t errstr_size);
pgs_err_t pgs_codec_check_audit(const pgs_audit_event_t *ev, char *errstr, size_t errstr_size);
/* Strict RFC 4648 base64 (padded, standard alphabet). 0 or -1. */
int pgs_codec_check_base64_decode(pgs_arena_t *arena, const char *in, size_t len, const char **out,
                                  size_t *out_len);
char *pgs_codec_check_base64_encode(const void *in, size_t len);

/* codec_scan.c: walks Avro binary against a writer schema before avro-c
 * reads it, so that avro-c never sees a length it would trust blindly. */
pgs_err_t pgs_codec_scan_avro(avro_schema_t schema, const void *buf, size_t len, char *errstr,
                              size_t errstr_size);

/* codec_direct.c: a WriteCommand read from Avro binary without avro-c.
 * The plan is NULL for a writer schema it cannot express (avro-c reads
 * those). The reader makes the scan's checks itself, and runs the scan for
 * its error text when one fails. */
pgs_codec_plan_t *pgs_codec_plan_command(avro_schema_t writer);
void pgs_codec_plan_free(pgs_codec_plan_t *plan);
/* 1 when the body must pass pgs_codec_scan_avro first (fields it skips). */
int pgs_codec_plan_needs_scan(const pgs_codec_plan_t *plan);
pgs_err_t pgs_codec_direct_command(const pgs_codec_plan_t *plan, const void *body, size_t len,
                                   pgs_command_t *cmd, char *errstr, size_t errstr_size);

/* codec_avro.c: avro-c values <-> pgscribe structs. */
pgs_err_t pgs_codec_avro_to_command(avro_value_t *rec, pgs_command_t *cmd, char *errstr,
                                    size_t errstr_size);
int pgs_codec_avro_from_command(const pgs_command_t *cmd, avro_value_t *rec);
pgs_err_t pgs_codec_avro_to_audit(avro_value_t *rec, pgs_audit_event_t *ev, char *errstr,
                                  size_t errstr_size);
int pgs_codec_avro_from_audit(const pgs_audit_event_t *ev, avro_value_t *rec);
int pgs_codec_avro_from_metrics(const pgs_metrics_record_t *m, avro_value_t *rec);
json_t *pgs_codec_avro_to_json(avro_value_t *v);

/* codec_json.c: the JSON form. */
pgs_err_t pgs_codec_json_to_command(const void *buf, size_t len, pgs_command_t *cmd, char *errstr,
                                    size_t errstr_size);
pgs_err_t pgs_codec_json_to_audit(const void *buf, size_t len, pgs_audit_event_t *ev, char *errstr,
                                  size_t errstr_size);
char *pgs_codec_json_from_audit(const pgs_audit_event_t *ev);

#endif
