/* pgscribe's one list of error classes and codes: each maps to a
 * dead-letter code, a metrics label and whether a retry can help. */
#ifndef PGSCRIBE_ERROR_H
#define PGSCRIBE_ERROR_H

typedef enum {
    PGS_ECLASS_NONE = 0,
    PGS_ECLASS_CONFIG,
    PGS_ECLASS_KAFKA,
    PGS_ECLASS_DECODE,
    PGS_ECLASS_VALIDATE,
    PGS_ECLASS_TENANT,
    PGS_ECLASS_DB_TRANSIENT,
    PGS_ECLASS_DB_PERMANENT,
    PGS_ECLASS_REGISTRY, /* the schema registry cannot be asked now: the message waits */
} pgs_eclass_t;

typedef enum {
    PGS_OK = 0,
    /* decode: the bytes are not a readable message */
    PGS_E_DECODE_EMPTY,
    PGS_E_DECODE_BAD_MAGIC,
    PGS_E_DECODE_UNKNOWN_SCHEMA,
    PGS_E_DECODE_TRUNCATED,
    PGS_E_DECODE_AVRO,
    PGS_E_DECODE_JSON_SYNTAX,
    PGS_E_DECODE_MISSING_FIELD,
    PGS_E_DECODE_WRONG_TYPE,
    PGS_E_DECODE_BAD_UTF8,
    PGS_E_DECODE_NUL_BYTE,
    PGS_E_DECODE_TOO_LARGE,
    PGS_E_DECODE_BAD_OP,
    PGS_E_DECODE_BAD_UUID,
    PGS_E_DECODE_BAD_BASE64,
    PGS_E_DECODE_DUPLICATE_FIELD,
    PGS_E_DECODE_SCHEMA_INCOMPATIBLE, /* a registry's writer schema the reader cannot read */
    /* validate: readable, but not allowed by the catalog */
    PGS_E_VALIDATE_UNKNOWN_ENTITY,
    PGS_E_VALIDATE_UNKNOWN_COLUMN,
    PGS_E_VALIDATE_KEY_MISMATCH,
    PGS_E_VALIDATE_MISSING_COLUMN,
    PGS_E_VALIDATE_RESERVED_COLUMN,
    PGS_E_VALIDATE_TYPE,
    PGS_E_VALIDATE_NO_DATA,
    PGS_E_VALIDATE_UNEXPECTED_DATA,
    PGS_E_VALIDATE_NO_VERSION,
    PGS_E_VALIDATE_BAD_CLINIC_ID,
    PGS_E_VALIDATE_GENERATED_COLUMN,
    PGS_E_VALIDATE_DISCLOSURE,   /* an AuditEvent DISCLOSE without recipient or purpose */
    PGS_E_VALIDATE_KEY_FORM,     /* a key value with no canonical text (field encryption) */
    PGS_E_VALIDATE_NO_FIELD_KEY, /* a sealed column, and no field key for the clinic */
    /* tenant: the command reaches outside its clinic */
    PGS_E_TENANT_MISMATCH,
    PGS_E_TENANT_RLS,
    PGS_E_TENANT_KEY_MISMATCH, /* the Kafka message key names another clinic */
    /* database */
    PGS_E_DB_TRANSIENT,
    PGS_E_DB_PERMANENT,
    PGS_E_DB_ROW_PRECONDITION,
    PGS_E_IDEMPOTENCY_KEY_REUSED, /* a recorded command id, sent with other content */
    /* registry: never a dead letter; the message waits for the registry */
    PGS_E_REGISTRY_UNAVAILABLE,
    PGS_E__COUNT
} pgs_err_t;

/** Room for any dead-letter code: pgscribe's and a SQLSTATE, with its NUL. */
#define PGS_ERROR_CODE_MAX 40

/** @brief Dead-letter code, e.g. "DECODE_BAD_MAGIC". */
const char *pgs_error_code(pgs_err_t err);
/** @brief The class of an error code. */
pgs_eclass_t pgs_error_class(pgs_err_t err);
/** @brief Class name used in dead-letter headers and metrics labels, e.g. "decode". */
const char *pgs_error_class_name(pgs_eclass_t klass);
/** @returns 1 if retrying the same command can succeed. */
int pgs_error_is_transient(pgs_err_t err);

/**
 * @brief Classifies a PostgreSQL SQLSTATE.
 * @returns PGS_E_DB_TRANSIENT, PGS_E_TENANT_RLS, PGS_E_DB_ROW_PRECONDITION,
 *          PGS_E_IDEMPOTENCY_KEY_REUSED or PGS_E_DB_PERMANENT. NULL (no SQLSTATE: connection lost)
 * is transient.
 */
pgs_err_t pgs_error_sqlstate_classify(const char *sqlstate);

/**
 * @brief Classifies a PostgreSQL error by its SQLSTATE and primary message
 *        (@p primary may be NULL): the message is read only to tell RLS's
 *        WITH CHECK (tenant) from a missing GRANT (db-permanent), which
 *        share 42501.
 */
pgs_err_t pgs_error_pg_classify(const char *sqlstate, const char *primary);

/**
 * @brief As pgs_error_pg_classify, knowing the schema the error names
 *        (PG_DIAG_SCHEMA_NAME, may be NULL): 23514 "no partition of relation
 *        found" in schema audit (the audit trail's month has no partition
 *        yet) is transient.
 */
pgs_err_t pgs_error_pg_classify_in(const char *sqlstate, const char *primary, const char *schema);

/**
 * @returns 1 if the SQLSTATE says the database as a whole is going away,
 *          read-only or out of a resource (class 08, 25006, class 53,
 *          57P01-57P05; NULL): an outage, which spends no attempt and feeds
 *          the circuit breaker.
 */
int pgs_error_sqlstate_is_outage(const char *sqlstate);

/** SQLSTATE raised by pgscribe.expect_rows() when an UPDATE or DELETE finds
 *  no row, or the row's version differs from expected_version. */
#define PGS_SQLSTATE_ROW_PRECONDITION "PS001"
/** SQLSTATE raised by pgscribe.expect_same_command() when a command id
 *  already recorded comes with other content (another digest). */
#define PGS_SQLSTATE_IDEMPOTENCY_KEY_REUSED "PS002"

/** @returns 1 if a dead letter of @p err carries the pgscribe code rather
 *           than the SQLSTATE (errors pgscribe's own SQL functions raise
 *           with a meaning of their own). */
int pgs_error_dead_letter_by_code(pgs_err_t err);

/** SQLSTATE raised by pgscribe.expect_clinic() when a row of a multi-row
 *  statement names another clinic than its transaction's. */
#define PGS_SQLSTATE_OTHER_CLINIC "PS003"

#endif
