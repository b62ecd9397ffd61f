/* WriteCommand and AuditEvent lifetimes, op names and field lookup. */
#include "codec/command.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"INSERT", "UPSERT", "UPDATE", "DELETE"};

const char *pgs_command_op_name(pgs_op_t op)
{
    return (unsigned)op < 4 ? op_names[op] : "UNKNOWN";
}

int pgs_command_op_parse(const char *name, pgs_op_t *op)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *op = (pgs_op_t)i;
            return 0;
        }
    }
    return -1;
}

int pgs_command_clinic_id_valid(const char *clinic_id)
{
    if (!clinic_id || !*clinic_id)
        return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)clinic_id; *p; p++, n++) {
        if (*p < 0x20 || *p == 0x7f || n >= PGS_CLINIC_ID_MAX)
            return 0;
    }
    return 1;
}

pgs_command_t *pgs_command_new(void)
{
    pgs_arena_t *arena = pgs_arena_new(1024);
    pgs_command_t *cmd = pgs_arena_alloc(arena, sizeof(*cmd));
    cmd->arena = arena;
    return cmd;
}

void pgs_command_free(pgs_command_t *cmd)
{
    if (cmd)
        pgs_arena_free(cmd->arena);
}

pgs_audit_event_t *pgs_command_audit_new(void)
{
    pgs_arena_t *arena = pgs_arena_new(1024);
    pgs_audit_event_t *ev = pgs_arena_alloc(arena, sizeof(*ev));
    ev->arena = arena;
    return ev;
}

void pgs_command_audit_free(pgs_audit_event_t *ev)
{
    if (ev)
        pgs_arena_free(ev->arena);
}

const pgs_value_t *pgs_command_field(const pgs_field_t *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i].value;
    }
    return NULL;
}

static int64_t fields_bytes(const pgs_field_t *fields, size_t n)
{
    int64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        switch (fields[i].value.type) {
        case PGS_VAL_BOOL:
            bytes += 1;
            break;
        case PGS_VAL_LONG:
        case PGS_VAL_DOUBLE:
            bytes += 8;
            break;
        case PGS_VAL_STRING:
        case PGS_VAL_BYTES:
            bytes += (int64_t)fields[i].value.u.s.len;
            break;
        default:
            break;
        }
    }
    return bytes;
}

int64_t pgs_command_value_bytes(const pgs_command_t *cmd)
{
    return fields_bytes(cmd->key, cmd->key_cnt) + fields_bytes(cmd->data, cmd->data_cnt);
}
