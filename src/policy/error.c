/* Error table: codes, classes, and SQLSTATE classification. */
#include "policy/error.h"

#include <string.h>

typedef struct {
    const char *code;
    pgs_eclass_t klass;
} err_info_t;

static const err_info_t err_table[PGS_E__COUNT] = {
    [PGS_OK] = {"OK", PGS_ECLASS_NONE},
    [PGS_E_DECODE_EMPTY] = {"DECODE_EMPTY", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_BAD_MAGIC] = {"DECODE_BAD_MAGIC", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_UNKNOWN_SCHEMA] = {"DECODE_UNKNOWN_SCHEMA", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_TRUNCATED] = {"DECODE_TRUNCATED", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_AVRO] = {"DECODE_AVRO", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_JSON_SYNTAX] = {"DECODE_JSON_SYNTAX", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_MISSING_FIELD] = {"DECODE_MISSING_FIELD", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_WRONG_TYPE] = {"DECODE_WRONG_TYPE", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_BAD_UTF8] = {"DECODE_BAD_UTF8", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_NUL_BYTE] = {"DECODE_NUL_BYTE", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_TOO_LARGE] = {"DECODE_TOO_LARGE", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_BAD_OP] = {"DECODE_BAD_OP", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_BAD_UUID] = {"DECODE_BAD_UUID", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_BAD_BASE64] = {"DECODE_BAD_BASE64", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_DUPLICATE_FIELD] = {"DECODE_DUPLICATE_FIELD", PGS_ECLASS_DECODE},
    [PGS_E_DECODE_SCHEMA_INCOMPATIBLE] = {"DECODE_SCHEMA_INCOMPATIBLE", PGS_ECLASS_DECODE},
    [PGS_E_VALIDATE_UNKNOWN_ENTITY] = {"VALIDATE_UNKNOWN_ENTITY", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_UNKNOWN_COLUMN] = {"VALIDATE_UNKNOWN_COLUMN", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_KEY_MISMATCH] = {"VALIDATE_KEY_MISMATCH", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_BAD_CLINIC_ID] = {"VALIDATE_BAD_CLINIC_ID", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_MISSING_COLUMN] = {"VALIDATE_MISSING_COLUMN", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_RESERVED_COLUMN] = {"VALIDATE_RESERVED_COLUMN", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_TYPE] = {"VALIDATE_TYPE", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_NO_DATA] = {"VALIDATE_NO_DATA", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_UNEXPECTED_DATA] = {"VALIDATE_UNEXPECTED_DATA", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_NO_VERSION] = {"VALIDATE_NO_VERSION", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_GENERATED_COLUMN] = {"VALIDATE_GENERATED_COLUMN", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_DISCLOSURE] = {"VALIDATE_DISCLOSURE", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_KEY_FORM] = {"VALIDATE_KEY_FORM", PGS_ECLASS_VALIDATE},
    [PGS_E_VALIDATE_NO_FIELD_KEY] = {"VALIDATE_NO_FIELD_KEY", PGS_ECLASS_VALIDATE},
    [PGS_E_TENANT_MISMATCH] = {"TENANT_MISMATCH", PGS_ECLASS_TENANT},
    [PGS_E_TENANT_RLS] = {"TENANT_RLS", PGS_ECLASS_TENANT},
    [PGS_E_TENANT_KEY_MISMATCH] = {"TENANT_KEY_MISMATCH", PGS_ECLASS_TENANT},
    [PGS_E_DB_TRANSIENT] = {"DB_TRANSIENT", PGS_ECLASS_DB_TRANSIENT},
    [PGS_E_DB_PERMANENT] = {"DB_PERMANENT", PGS_ECLASS_DB_PERMANENT},
    [PGS_E_DB_ROW_PRECONDITION] = {"DB_ROW_PRECONDITION", PGS_ECLASS_DB_PERMANENT},
    /* db-permanent: found by the database (the stored digest), rolls back
     * the transaction, and fails again on every retry */
    [PGS_E_IDEMPOTENCY_KEY_REUSED] = {"IDEMPOTENCY_KEY_REUSED", PGS_ECLASS_DB_PERMANENT},
    [PGS_E_REGISTRY_UNAVAILABLE] = {"REGISTRY_UNAVAILABLE", PGS_ECLASS_REGISTRY},
};

static const char *const class_names[] = {
    [PGS_ECLASS_NONE] = "none",
    [PGS_ECLASS_CONFIG] = "config",
    [PGS_ECLASS_KAFKA] = "kafka",
    [PGS_ECLASS_DECODE] = "decode",
    [PGS_ECLASS_VALIDATE] = "validate",
    [PGS_ECLASS_TENANT] = "tenant",
    [PGS_ECLASS_DB_TRANSIENT] = "db-transient",
    [PGS_ECLASS_DB_PERMANENT] = "db-permanent",
    [PGS_ECLASS_REGISTRY] = "registry",
};

const char *pgs_error_code(pgs_err_t err)
{
    return (unsigned)err < PGS_E__COUNT ? err_table[err].code : "UNKNOWN";
}

pgs_eclass_t pgs_error_class(pgs_err_t err)
{
    return (unsigned)err < PGS_E__COUNT ? err_table[err].klass : PGS_ECLASS_NONE;
}

const char *pgs_error_class_name(pgs_eclass_t klass)
{
    return (unsigned)klass <= PGS_ECLASS_REGISTRY ? class_names[klass] : "unknown";
}

int pgs_error_dead_letter_by_code(pgs_err_t err)
{
    /* PS001 keeps its SQLSTATE in dead letters: consumers already match it */
    return err == PGS_E_IDEMPOTENCY_KEY_REUSED;
}

int pgs_error_is_transient(pgs_err_t err)
{
    return pgs_error_class(err) == PGS_ECLASS_DB_TRANSIENT;
}

/* The outage SQLSTATEs: the database as a whole is going away, read-only or
 * out of a resource, so every command would fail alike. Such a failure
 * pauses consumption and feeds the circuit breaker; it never spends a
 * command's attempts, so a failover or a full disk dead-letters nothing.
 *   08xxx connection exceptions; 25006 read_only_sql_transaction (a standby,
 *   or a primary demoted during failover, or default_transaction_read_only);
 *   53xxx insufficient resources (disk full, out of memory, too many
 *   connections, configuration limit); 57P01-57P05 admin/crash shutdown,
 *   cannot connect now, database dropped, idle session timeout. */
int pgs_error_sqlstate_is_outage(const char *s)
{
    if (!s || strlen(s) != 5)
        return 1;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "25006") == 0 || strncmp(s, "53", 2) == 0 ||
           strncmp(s, "57P0", 4) == 0;
}

/* Transient: the same command can succeed later without anyone changing it.
 * The outages above; class 40 transaction rollback (serialization failure,
 * deadlock); 57014 query_canceled (statement_timeout); 55P03
 * lock_not_available (lock_timeout) and 55006 object_in_use; 58 system
 * errors (I/O); XX internal errors. Everything else is a property of the
 * command, or of the configuration, and fails again. */
pgs_err_t pgs_error_sqlstate_classify(const char *s)
{
    return pgs_error_pg_classify(s, NULL);
}

/* RLS's WITH CHECK and a missing GRANT share SQLSTATE 42501; only the
 * primary message tells them apart (PostgreSQL's own wording, stable since
 * 9.5; it names a table, never a value). */
#define RLS_CHECK_MESSAGE "new row violates row-level security policy"

pgs_err_t pgs_error_pg_classify(const char *s, const char *primary)
{
    return pgs_error_pg_classify_in(s, primary, NULL);
}

/* 23514 is also "no partition of relation found for row": on the audit
 * trail (schema audit) that is a month whose partition is not created yet,
 * which audit.ensure_partitions will create; retried, never dead-lettered. */
#define NO_PARTITION_MESSAGE "no partition of relation "

pgs_err_t pgs_error_pg_classify_in(const char *s, const char *primary, const char *schema)
{
    if (s && strcmp(s, "23514") == 0 && schema && strcmp(schema, "audit") == 0 && primary &&
        strncmp(primary, NO_PARTITION_MESSAGE, strlen(NO_PARTITION_MESSAGE)) == 0)
        return PGS_E_DB_TRANSIENT;
    if (!s || strlen(s) != 5 || pgs_error_sqlstate_is_outage(s))
        return PGS_E_DB_TRANSIENT;
    if (strcmp(s, PGS_SQLSTATE_ROW_PRECONDITION) == 0)
        return PGS_E_DB_ROW_PRECONDITION;
    if (strcmp(s, PGS_SQLSTATE_OTHER_CLINIC) == 0)
        return PGS_E_TENANT_MISMATCH;
    if (strcmp(s, PGS_SQLSTATE_IDEMPOTENCY_KEY_REUSED) == 0)
        return PGS_E_IDEMPOTENCY_KEY_REUSED;
    if (strcmp(s, "42501") == 0)
        return primary && strncmp(primary, RLS_CHECK_MESSAGE, strlen(RLS_CHECK_MESSAGE)) == 0
                   ? PGS_E_TENANT_RLS
                   : PGS_E_DB_PERMANENT; /* a missing GRANT: the configuration's fault */
    if (strcmp(s, "55P03") == 0 || strcmp(s, "55006") == 0 || strcmp(s, "57014") == 0)
        return PGS_E_DB_TRANSIENT;
    if (strncmp(s, "40", 2) == 0 || strncmp(s, "58", 2) == 0 || strncmp(s, "XX", 2) == 0)
        return PGS_E_DB_TRANSIENT;
    return PGS_E_DB_PERMANENT;
}
