/* The decoded forms of pgscribe's message contract (see schemas/avro/). */
#ifndef PGSCRIBE_COMMAND_H
#define PGSCRIBE_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

/** Value = union of null, boolean, long, double, string, bytes. */
typedef enum {
    PGS_VAL_NULL = 0,
    PGS_VAL_BOOL,
    PGS_VAL_LONG,
    PGS_VAL_DOUBLE,
    PGS_VAL_STRING,
    PGS_VAL_BYTES,
} pgs_value_type_t;

typedef struct {
    pgs_value_type_t type;
    union {
        int b;
        int64_t l;
        double d;
        struct {
            const char *ptr; /* NUL-terminated for strings; raw for bytes */
            size_t len;
        } s;
    } u;
} pgs_value_t;

/** One entry of the `key` or `data` map. */
typedef struct {
    const char *name;
    pgs_value_t value;
    /* 1 + the index of its column in the command's entity, set by
     * pgs_catalog_validate (catalog.h); meaningful only while the command's
     * cols_of names that entity */
    int col;
} pgs_field_t;

typedef enum {
    PGS_OP_INSERT = 0,
    PGS_OP_UPSERT,
    PGS_OP_UPDATE,
    PGS_OP_DELETE,
} pgs_op_t;

/** @brief "INSERT", "UPSERT", "UPDATE" or "DELETE". */
const char *pgs_command_op_name(pgs_op_t op);
/** @returns 0 and sets *op, or -1 for an unknown name. */
int pgs_command_op_parse(const char *name, pgs_op_t *op);

/**
 * @brief pgscribe.v1.WriteCommand. Every pointer points into @c arena,
 *        which the command owns; pgs_command_free releases it all.
 */
typedef struct pgs_command_s {
    pgs_arena_t *arena;
    const char *command_id; /* uuid text */
    const char *clinic_id;
    const char *actor;
    const char *entity;
    pgs_op_t op;
    pgs_field_t *key;
    size_t key_cnt;
    pgs_field_t *data;
    size_t data_cnt;
    int has_expected_version;
    int64_t expected_version;
    int64_t issued_at_ms;
    /* the W3C traceparent of the message that carried it, for the audit
     * trail: set at intake from the message headers, never by the codec */
    const char *traceparent;
    /* the content digest (32 bytes), when it was taken before intake
     * changed the values: a command whose field-encrypted columns were
     * sealed keeps the digest of its plaintext (catalog/fieldseal.h) */
    const unsigned char *digest;
    /* the entity pgs_catalog_validate last accepted the command for, whose
     * columns the fields' col index; NULL before or after a refusal */
    const struct pgs_entity_s *cols_of;
} pgs_command_t;

/** Longest clinic id pgscribe takes, in bytes: a clinic id is an identifier
 *  of a tenant, not free text, and it is part of every lane key. */
#define PGS_CLINIC_ID_MAX 128

/**
 * @returns 1 if @p clinic_id is acceptable as a tenant: 1 to
 *          PGS_CLINIC_ID_MAX bytes with no control character (U+0000-U+001F,
 *          U+007F). UTF-8 validity is the codec's check.
 */
int pgs_command_clinic_id_valid(const char *clinic_id);

/** @brief An empty command with its own arena. */
pgs_command_t *pgs_command_new(void);
void pgs_command_free(pgs_command_t *cmd);

/** pgscribe.v1.AuditEvent. Pointers point into @c arena. */
typedef struct pgs_audit_event_s {
    pgs_arena_t *arena;
    const char *event_id;
    const char *clinic_id;
    const char *actor;
    const char *action;
    const char *resource_type;
    const char *resource_id;
    const char *outcome;
    int64_t occurred_at_ms;
    const char *source;
    pgs_field_t *details; /* values are strings */
    size_t details_cnt;
    /* AuditEvent v2, for action DISCLOSE (NULL otherwise) */
    const char *recipient;
    const char *purpose;
    const char *description;
    const char *traceparent; /* as pgs_command_t's */
} pgs_audit_event_t;

/** @returns the value of the entry named @p name among @p n fields, or NULL
 *           when the map has none (which is not the same as a null value). */
const pgs_value_t *pgs_command_field(const pgs_field_t *fields, size_t n, const char *name);

/**
 * @returns the bytes of the command's key and data values: a string's or
 *          bytes' length, 8 for a long or double, 1 for a boolean, 0 for a
 *          null. The measure of what a command writes, for the per-clinic
 *          cost series; it is a size, never a value.
 */
int64_t pgs_command_value_bytes(const pgs_command_t *cmd);

pgs_audit_event_t *pgs_command_audit_new(void);
void pgs_command_audit_free(pgs_audit_event_t *ev);

#endif
