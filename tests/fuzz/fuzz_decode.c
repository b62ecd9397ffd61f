/* libFuzzer target: arbitrary bytes through decode, validation and SQL
 * generation, as a WriteCommand or as an AuditEvent (first byte's mode). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "codec/codec.h"
#include "sql/auditsql.h"
#include "sql/sqlgen.h"

/* pg_type oids of the clinic schema's column types; the enum's oid is
 * assigned at CREATE TYPE time, any unused number stands in for it. */
#define OID_BOOL        16
#define OID_BYTEA       17
#define OID_INT8        20
#define OID_INT4        23
#define OID_TEXT        25
#define OID_DATE        1082
#define OID_TIMESTAMPTZ 1184
#define OID_NUMERIC     1700
#define OID_UUID        2950
#define OID_APPT_STATUS 90001

typedef struct {
    const char *name;
    const char *type_sql;
    unsigned oid;
    int is_pk, not_null, has_default, is_phi;
} fuzz_col_t;

/* Mirrors schemas/sql/0003_clinic_schema.sql (columns, keys, defaults, PHI). */
static const fuzz_col_t patients[] = {
    {"id", "uuid", OID_UUID, 1, 1, 0, 0},
    {"clinic_id", "text", OID_TEXT, 0, 1, 0, 0},
    {"mrn", "text", OID_TEXT, 0, 0, 0, 1},
    {"given_name", "text", OID_TEXT, 0, 0, 0, 1},
    {"family_name", "text", OID_TEXT, 0, 0, 0, 1},
    {"birth_date", "date", OID_DATE, 0, 0, 0, 1},
    {"sex", "text", OID_TEXT, 0, 0, 0, 1},
    {"phone", "text", OID_TEXT, 0, 0, 0, 1},
    {"email", "text", OID_TEXT, 0, 0, 0, 1},
    {"address", "text", OID_TEXT, 0, 0, 0, 1},
    {"weight_kg", "numeric(5,2)", OID_NUMERIC, 0, 0, 0, 1},
    {"active", "boolean", OID_BOOL, 0, 1, 1, 0},
    {"notes", "text", OID_TEXT, 0, 0, 0, 1},
    {"photo", "bytea", OID_BYTEA, 0, 0, 0, 1},
    {"version", "bigint", OID_INT8, 0, 1, 1, 0},
    {"created_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
    {"updated_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
};

static const fuzz_col_t appointments[] = {
    {"id", "uuid", OID_UUID, 1, 1, 0, 0},
    {"clinic_id", "text", OID_TEXT, 0, 1, 0, 0},
    {"patient_id", "uuid", OID_UUID, 0, 1, 0, 0},
    {"practitioner", "text", OID_TEXT, 0, 0, 0, 0},
    {"starts_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 0, 0},
    {"duration_min", "integer", OID_INT4, 0, 0, 0, 0},
    {"status", "clinic.appointment_status", OID_APPT_STATUS, 0, 1, 1, 0},
    {"reason", "text", OID_TEXT, 0, 0, 0, 1},
    {"version", "bigint", OID_INT8, 0, 1, 1, 0},
    {"created_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
    {"updated_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
};

static const fuzz_col_t encounters[] = {
    {"id", "uuid", OID_UUID, 1, 1, 0, 0},
    {"clinic_id", "text", OID_TEXT, 0, 1, 0, 0},
    {"patient_id", "uuid", OID_UUID, 0, 1, 0, 0},
    {"appointment_id", "uuid", OID_UUID, 0, 0, 0, 0},
    {"kind", "text", OID_TEXT, 0, 0, 0, 0},
    {"started_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 0, 0, 0},
    {"ended_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 0, 0, 0},
    {"diagnosis_code", "text", OID_TEXT, 0, 0, 0, 1},
    {"notes", "text", OID_TEXT, 0, 0, 0, 1},
    {"version", "bigint", OID_INT8, 0, 1, 1, 0},
    {"created_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
    {"updated_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
};

static const fuzz_col_t prescriptions[] = {
    {"id", "uuid", OID_UUID, 1, 1, 0, 0},
    {"clinic_id", "text", OID_TEXT, 0, 1, 0, 0},
    {"patient_id", "uuid", OID_UUID, 0, 1, 0, 0},
    {"encounter_id", "uuid", OID_UUID, 0, 0, 0, 0},
    {"drug_code", "text", OID_TEXT, 0, 1, 0, 1},
    {"drug_name", "text", OID_TEXT, 0, 0, 0, 1},
    {"dose", "text", OID_TEXT, 0, 0, 0, 1},
    {"quantity", "integer", OID_INT4, 0, 0, 0, 1},
    {"refills", "integer", OID_INT4, 0, 1, 1, 0},
    {"status", "text", OID_TEXT, 0, 0, 0, 0},
    {"prescribed_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 0, 0, 0},
    {"version", "bigint", OID_INT8, 0, 1, 1, 0},
    {"created_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
    {"updated_at", "timestamp with time zone", OID_TIMESTAMPTZ, 0, 1, 1, 0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static pgs_codec_t *codec;
static pgs_catalog_t *catalog;

static void fuzz_add_entity(pgs_catalog_t *cat, const char *name, const fuzz_col_t *cols, size_t n)
{
    pgs_entity_t *ent = pgs_catalog_add_entity(cat, name);
    for (size_t i = 0; i < n; i++)
        pgs_catalog_entity_add_column(ent, cols[i].name, cols[i].type_sql, cols[i].oid,
                                      cols[i].is_pk, cols[i].not_null, cols[i].has_default,
                                      cols[i].is_phi);
}

/* Freed at exit so that LeakSanitizer's final check sees only real leaks:
 * avro-c keeps some of the codec's memory where LSan cannot trace it. */
static void fuzz_cleanup(void)
{
    pgs_codec_free(codec);
    pgs_catalog_free(catalog);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char errstr[256];
    codec = pgs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "fuzz_decode: codec: %s\n", errstr);
        abort();
    }
    catalog = pgs_catalog_new("clinic");
    fuzz_add_entity(catalog, "patients", patients, COUNT(patients));
    fuzz_add_entity(catalog, "appointments", appointments, COUNT(appointments));
    fuzz_add_entity(catalog, "encounters", encounters, COUNT(encounters));
    fuzz_add_entity(catalog, "prescriptions", prescriptions, COUNT(prescriptions));
    atexit(fuzz_cleanup);
    return 0;
}

/* A broken contract is a finding like a crash: abort so libFuzzer saves the input. */
static void fuzz_require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_decode: contract violated: %s\n", what);
        abort();
    }
}

/* A decode error's contract, for commands and audit events alike. */
static void fuzz_decode_error(pgs_err_t err, const char *errstr, size_t errstr_size)
{
    fuzz_require(pgs_error_class(err) == PGS_ECLASS_DECODE, "decode error of class decode");
    fuzz_require(memchr(errstr, '\0', errstr_size) != NULL, "errstr terminated");
    fuzz_require(errstr[0] != '\0', "decode error has a reason");
}

/* An AuditEvent: decoded, then the batch statement's parameters built for
 * it as the audit path does (the details map becomes a jsonb text). */
static int fuzz_audit(const uint8_t *data, size_t size, int is_json)
{
    pgs_audit_event_t *ev = NULL;
    char errstr[256];
    errstr[0] = '\0';
    pgs_err_t err = pgs_codec_decode_audit(codec, data, size, is_json, &ev, errstr, sizeof(errstr));
    if (err != PGS_OK) {
        fuzz_require(ev == NULL, "no audit event on a decode error");
        fuzz_decode_error(err, errstr, sizeof(errstr));
        return 0;
    }
    fuzz_require(ev && ev->event_id && ev->clinic_id && *ev->clinic_id && ev->actor && ev->action &&
                     ev->outcome && ev->source,
                 "decoded audit event complete");
    for (size_t i = 0; i < ev->details_cnt; i++)
        fuzz_require(ev->details[i].name && ev->details[i].value.type == PGS_VAL_STRING,
                     "details are string values");
    const pgs_audit_event_t *evs[] = {ev};
    int32_t partition = 0;
    int64_t offset = 0;
    pgs_batch_params_t params;
    pgs_auditsql_params(evs, &partition, &offset, 1, "fuzz.audit", &params);
    fuzz_require(params.n == PGS_AUDITSQL_NPARAMS, "audit parameter count");
    for (int i = 0; i < params.n; i++)
        fuzz_require(params.values[i] != NULL, "audit parameter built");
    pgs_sqlbatch_params_free(&params);
    pgs_command_audit_free(ev);
    return 0;
}

/* First byte: bit 0 selects JSON (1) or Avro (0), bit 1 an AuditEvent (1)
 * or a WriteCommand (0); the rest is the message. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int is_json = data[0] & 1;
    if (data[0] & 2)
        return fuzz_audit(data + 1, size - 1, is_json);
    pgs_command_t *cmd = NULL;
    char errstr[256];
    errstr[0] = '\0';
    pgs_err_t err =
        pgs_codec_decode_command(codec, data + 1, size - 1, is_json, &cmd, errstr, sizeof(errstr));
    if (err != PGS_OK) {
        fuzz_require(cmd == NULL, "no command on a decode error");
        fuzz_decode_error(err, errstr, sizeof(errstr));
        return 0;
    }
    fuzz_require(cmd && cmd->command_id && cmd->clinic_id && cmd->entity && cmd->key_cnt > 0,
                 "decoded command complete");

    const pgs_entity_t *ent = NULL;
    err = pgs_catalog_validate(catalog, cmd, &ent, errstr, sizeof(errstr));
    if (err != PGS_OK) {
        pgs_eclass_t klass = pgs_error_class(err);
        fuzz_require(klass == PGS_ECLASS_VALIDATE || klass == PGS_ECLASS_TENANT,
                     "validation error of class validate or tenant");
        pgs_command_free(cmd);
        return 0;
    }
    fuzz_require(ent != NULL, "validated command has an entity");
    pgs_shape_t shape;
    if (pgs_sqlgen_shape_of(ent, cmd, &shape) == 0) {
        char *sql = pgs_sqlgen_statement(pgs_catalog_schema(catalog), &shape);
        fuzz_require(sql != NULL, "statement generated");
        free(sql);
        pgs_params_t params;
        pgs_sqlgen_params(&shape, cmd, "fuzz.commands", 0, 0, &params);
        fuzz_require(params.n >= PGS_PARAM_FIXED_COUNT && (size_t)params.n <= COUNT(params.values),
                     "parameter count in bounds");
    }
    pgs_command_free(cmd);
    return 0;
}
