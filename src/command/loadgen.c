/* Load generator: deterministic, always-valid write commands for the clinic
 * example schema, with keys that repeat so per-key ordering gets exercised,
 * and audit events for the audit topic. */
#include "command/loadgen.h"
#include "common/xalloc.h"
#include "codec/value.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTITY_CNT 4

/* What a generated column holds; decides the value generator. */
typedef enum {
    GEN_MRN,
    GEN_GIVEN_NAME,
    GEN_FAMILY_NAME,
    GEN_BIRTH_DATE,
    GEN_SEX,
    GEN_PHONE,
    GEN_EMAIL,
    GEN_ADDRESS,
    GEN_WEIGHT,
    GEN_ACTIVE,
    GEN_NOTES,
    GEN_PHOTO,
    GEN_PATIENT_REF,
    GEN_APPOINTMENT_REF,
    GEN_ENCOUNTER_REF,
    GEN_PRACTITIONER,
    GEN_TIMESTAMP,
    GEN_DURATION,
    GEN_APPT_STATUS,
    GEN_REASON,
    GEN_ENCOUNTER_KIND,
    GEN_DIAGNOSIS,
    GEN_DRUG_CODE,
    GEN_DRUG_NAME,
    GEN_DOSE,
    GEN_QUANTITY,
    GEN_REFILLS,
    GEN_RX_STATUS,
} gen_kind_t;

typedef struct {
    const char *name;
    gen_kind_t kind;
    int not_null; /* never sent as null */
    int required; /* NOT NULL without default: every INSERT/UPSERT carries it */
} col_spec_t;

typedef struct {
    const char *name;
    int weight; /* percent of commands */
    const col_spec_t *cols;
    size_t col_cnt;
} entity_spec_t;

static const col_spec_t patient_cols[] = {
    {"mrn", GEN_MRN, 0, 0},
    {"given_name", GEN_GIVEN_NAME, 0, 0},
    {"family_name", GEN_FAMILY_NAME, 0, 0},
    {"birth_date", GEN_BIRTH_DATE, 0, 0},
    {"sex", GEN_SEX, 0, 0},
    {"phone", GEN_PHONE, 0, 0},
    {"email", GEN_EMAIL, 0, 0},
    {"address", GEN_ADDRESS, 0, 0},
    {"weight_kg", GEN_WEIGHT, 0, 0},
    {"active", GEN_ACTIVE, 1, 0},
    {"notes", GEN_NOTES, 0, 0},
    {"photo", GEN_PHOTO, 0, 0},
};

static const col_spec_t appointment_cols[] = {
    {"patient_id", GEN_PATIENT_REF, 1, 1}, {"practitioner", GEN_PRACTITIONER, 0, 0},
    {"starts_at", GEN_TIMESTAMP, 1, 1},    {"duration_min", GEN_DURATION, 0, 0},
    {"status", GEN_APPT_STATUS, 1, 0},     {"reason", GEN_REASON, 0, 0},
};

static const col_spec_t encounter_cols[] = {
    {"patient_id", GEN_PATIENT_REF, 1, 1},
    {"appointment_id", GEN_APPOINTMENT_REF, 0, 0},
    {"kind", GEN_ENCOUNTER_KIND, 0, 0},
    {"started_at", GEN_TIMESTAMP, 0, 0},
    {"ended_at", GEN_TIMESTAMP, 0, 0},
    {"diagnosis_code", GEN_DIAGNOSIS, 0, 0},
    {"notes", GEN_NOTES, 0, 0},
};

static const col_spec_t prescription_cols[] = {
    {"patient_id", GEN_PATIENT_REF, 1, 1},
    {"encounter_id", GEN_ENCOUNTER_REF, 0, 0},
    {"drug_code", GEN_DRUG_CODE, 1, 1},
    {"drug_name", GEN_DRUG_NAME, 0, 0},
    {"dose", GEN_DOSE, 0, 0},
    {"quantity", GEN_QUANTITY, 0, 0},
    {"refills", GEN_REFILLS, 1, 0},
    {"status", GEN_RX_STATUS, 0, 0},
    {"prescribed_at", GEN_TIMESTAMP, 0, 0},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

enum { ENT_PATIENTS, ENT_APPOINTMENTS, ENT_ENCOUNTERS, ENT_PRESCRIPTIONS };

static const entity_spec_t entities[ENTITY_CNT] = {
    {"patients", 40, patient_cols, COUNT_OF(patient_cols)},
    {"appointments", 30, appointment_cols, COUNT_OF(appointment_cols)},
    {"encounters", 20, encounter_cols, COUNT_OF(encounter_cols)},
    {"prescriptions", 10, prescription_cols, COUNT_OF(prescription_cols)},
};

/* Clearly synthetic values: fictional 555-01xx numbers, example.test
 * addresses, family names no one carries. */
static const char *const given_names[] = {"Alex",  "Sam",   "Robin", "Jordan", "Casey",  "Morgan",
                                          "Avery", "Riley", "Quinn", "Jamie",  "Taylor", "Drew"};
static const char *const family_names[] = {"Placeholder", "Specimen", "Sampleton", "Testwell",
                                           "Mockridge",   "Dummett",  "Synthson",  "Fakely"};
static const char *const sexes[] = {"female", "male", "other", "unknown"};
static const char *const streets[] = {"Synthetic", "Fixture", "Example", "Mock", "Stub"};
static const char *const notes[] = {
    "Synthetic note: routine follow-up.", "Synthetic note: no known allergies.",
    "Synthetic note: prefers morning slots.", "Synthetic note: interpreter requested.",
    "Synthetic note: it's a test record."};
static const char *const tz_suffixes[] = {"Z", "+00:00", "+01:00", "-05:00", "+05:30", "-08:00"};
static const int durations[] = {10, 15, 20, 30, 45, 60};
static const char *const appt_statuses[] = {"booked", "arrived", "fulfilled", "cancelled",
                                            "noshow"};
static const char *const reasons[] = {"annual check-up",  "follow-up", "vaccination",
                                      "lab results",      "back pain", "sore throat",
                                      "medication review"};
static const char *const encounter_kinds[] = {"outpatient", "telehealth", "emergency", "inpatient"};
static const char *const diagnoses[] = {"Z00.00", "J06.9",   "I10",   "E11.9",
                                        "M54.5",  "J45.909", "K21.9", "F41.1"};
static const char *const drug_codes[] = {"RX-10001", "RX-10002", "RX-10003",
                                         "RX-10004", "RX-10005", "RX-10006"};
static const char *const drug_names[] = {"amoxicillin",  "lisinopril", "metformin",
                                         "atorvastatin", "salbutamol", "omeprazole"};
static const char *const doses[] = {"500 mg three times daily", "10 mg once daily",
                                    "850 mg twice daily",       "20 mg at night",
                                    "2 puffs as needed",        "20 mg before breakfast"};
static const char *const rx_statuses[] = {"active", "completed", "stopped", "on-hold"};

typedef struct {
    char id[37];
    int live;
    int64_t version;
} key_state_t;

typedef struct {
    key_state_t *keys;
    size_t cnt;
    size_t cap;
} key_pool_t;

/* One xoshiro256** stream. */
typedef struct {
    uint64_t s[4];
} rng_t;

struct pgs_loadgen_s {
    rng_t rng;       /* commands */
    rng_t audit_rng; /* audit events: apart, so neither stream shifts the other */
    int clinics;
    pgs_loadgen_opts_t opts;
    uint64_t seq;
    uint64_t audit_seq;
    key_pool_t *pools; /* clinics * ENTITY_CNT, by clinic then entity */
};

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Modulo bias is below 2^-40 for the small bounds used here. */
static uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

#define PICK(r, arr) ((arr)[rng_below((r), COUNT_OF(arr))])

static void rng_uuid(rng_t *r, char out[37])
{
    uint8_t b[16];
    uint64_t hi = rng_next(r), lo = rng_next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(hi >> (56 - 8 * i));
        b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void pgs_loadgen_opts_default(pgs_loadgen_opts_t *opts)
{
    opts->base_time_ms = INT64_C(1704067200000); /* 2024-01-01T00:00:00Z */
    opts->reuse_ratio = 0.6;
    opts->null_ratio = 0.08;
    opts->photo_ratio = 0.05;
}

pgs_loadgen_t *pgs_loadgen_new(uint64_t seed, int clinics, const pgs_loadgen_opts_t *opts)
{
    if (clinics < 1 || clinics > 999)
        return NULL;
    pgs_loadgen_t *lg = calloc(1, sizeof(*lg));
    if (!lg)
        return NULL;
    lg->pools = calloc((size_t)clinics * ENTITY_CNT, sizeof(*lg->pools));
    if (!lg->pools) {
        free(lg);
        return NULL;
    }
    lg->clinics = clinics;
    if (opts)
        lg->opts = *opts;
    else
        pgs_loadgen_opts_default(&lg->opts);
    /* splitmix64 spreads any seed, including 0, over the whole state. */
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        lg->rng.s[i] = splitmix64(&x);
    for (int i = 0; i < 4; i++)
        lg->audit_rng.s[i] = splitmix64(&x);
    return lg;
}

void pgs_loadgen_free(pgs_loadgen_t *lg)
{
    if (!lg)
        return;
    for (size_t i = 0; i < (size_t)lg->clinics * ENTITY_CNT; i++)
        free(lg->pools[i].keys);
    free(lg->pools);
    free(lg);
}

static key_state_t *pool_add(key_pool_t *pool)
{
    if (pool->cnt == pool->cap) {
        size_t cap = pool->cap ? pool->cap * 2 : 64;
        key_state_t *keys = pgs_xalloc_realloc(pool->keys, cap * sizeof(*keys));
        pool->keys = keys;
        pool->cap = cap;
    }
    key_state_t *ks = &pool->keys[pool->cnt++];
    memset(ks, 0, sizeof(*ks));
    return ks;
}

static void set_string(pgs_command_t *cmd, pgs_value_t *v, const char *s)
{
    v->type = PGS_VAL_STRING;
    v->u.s.ptr = pgs_arena_strdup(cmd->arena, s);
    v->u.s.len = strlen(s);
}

static void set_long(pgs_value_t *v, int64_t l)
{
    v->type = PGS_VAL_LONG;
    v->u.l = l;
}

/* Another row of the same clinic when there is one, so references look
 * plausible; the example schema has no foreign keys, so any uuid is valid. */
static void gen_ref(pgs_loadgen_t *lg, int clinic, int entity, char out[37])
{
    key_pool_t *pool = &lg->pools[clinic * ENTITY_CNT + entity];
    if (pool->cnt > 0)
        memcpy(out, pool->keys[rng_below(&lg->rng, (uint32_t)pool->cnt)].id, 37);
    else
        rng_uuid(&lg->rng, out);
}

static void gen_value(pgs_loadgen_t *lg, pgs_command_t *cmd, int clinic, gen_kind_t kind,
                      pgs_value_t *v)
{
    char buf[128];
    switch (kind) {
    case GEN_MRN:
        snprintf(buf, sizeof(buf), "MRN-%07u", rng_below(&lg->rng, 10000000));
        set_string(cmd, v, buf);
        break;
    case GEN_GIVEN_NAME:
        set_string(cmd, v, PICK(&lg->rng, given_names));
        break;
    case GEN_FAMILY_NAME:
        set_string(cmd, v, PICK(&lg->rng, family_names));
        break;
    case GEN_BIRTH_DATE:
        snprintf(buf, sizeof(buf), "%04u-%02u-%02u", 1930 + rng_below(&lg->rng, 94),
                 1 + rng_below(&lg->rng, 12), 1 + rng_below(&lg->rng, 28));
        set_string(cmd, v, buf);
        break;
    case GEN_SEX:
        set_string(cmd, v, PICK(&lg->rng, sexes));
        break;
    case GEN_PHONE:
        snprintf(buf, sizeof(buf), "+1-202-555-01%02u", rng_below(&lg->rng, 100));
        set_string(cmd, v, buf);
        break;
    case GEN_EMAIL:
        snprintf(buf, sizeof(buf), "patient%u@example.test", rng_below(&lg->rng, 1000000));
        set_string(cmd, v, buf);
        break;
    case GEN_ADDRESS:
        snprintf(buf, sizeof(buf), "%u %s Street, Testville", 1 + rng_below(&lg->rng, 999),
                 PICK(&lg->rng, streets));
        set_string(cmd, v, buf);
        break;
    case GEN_WEIGHT:
        /* Both encodings a producer may use for numeric; doubles are
         * multiples of 0.25 so they round-trip exactly through text. */
        if (rng_below(&lg->rng, 2)) {
            v->type = PGS_VAL_DOUBLE;
            v->u.d = 2.0 + rng_below(&lg->rng, 713) * 0.25;
        } else {
            snprintf(buf, sizeof(buf), "%u.%02u", 2 + rng_below(&lg->rng, 178),
                     rng_below(&lg->rng, 100));
            set_string(cmd, v, buf);
        }
        break;
    case GEN_ACTIVE:
        v->type = PGS_VAL_BOOL;
        v->u.b = rng_below(&lg->rng, 100) < 85;
        break;
    case GEN_NOTES:
        set_string(cmd, v, PICK(&lg->rng, notes));
        break;
    case GEN_PHOTO: {
        size_t len = 16 + rng_below(&lg->rng, 49);
        uint8_t *p = pgs_arena_alloc(cmd->arena, len);
        for (size_t i = 0; i < len; i++)
            p[i] = (uint8_t)rng_next(&lg->rng);
        v->type = PGS_VAL_BYTES;
        v->u.s.ptr = (const char *)p;
        v->u.s.len = len;
        break;
    }
    case GEN_PATIENT_REF:
    case GEN_APPOINTMENT_REF:
    case GEN_ENCOUNTER_REF:
        gen_ref(lg, clinic,
                kind == GEN_PATIENT_REF       ? ENT_PATIENTS
                : kind == GEN_APPOINTMENT_REF ? ENT_APPOINTMENTS
                                              : ENT_ENCOUNTERS,
                buf);
        set_string(cmd, v, buf);
        break;
    case GEN_PRACTITIONER:
        snprintf(buf, sizeof(buf), "Dr. %s", PICK(&lg->rng, family_names));
        set_string(cmd, v, buf);
        break;
    case GEN_TIMESTAMP:
        snprintf(buf, sizeof(buf), "2024-%02u-%02uT%02u:%02u:00%s", 1 + rng_below(&lg->rng, 12),
                 1 + rng_below(&lg->rng, 28), 7 + rng_below(&lg->rng, 12),
                 5 * rng_below(&lg->rng, 12), PICK(&lg->rng, tz_suffixes));
        set_string(cmd, v, buf);
        break;
    case GEN_DURATION:
        set_long(v, PICK(&lg->rng, durations));
        break;
    case GEN_APPT_STATUS:
        set_string(cmd, v, PICK(&lg->rng, appt_statuses));
        break;
    case GEN_REASON:
        set_string(cmd, v, PICK(&lg->rng, reasons));
        break;
    case GEN_ENCOUNTER_KIND:
        set_string(cmd, v, PICK(&lg->rng, encounter_kinds));
        break;
    case GEN_DIAGNOSIS:
        set_string(cmd, v, PICK(&lg->rng, diagnoses));
        break;
    case GEN_DRUG_CODE:
        set_string(cmd, v, PICK(&lg->rng, drug_codes));
        break;
    case GEN_DRUG_NAME:
        set_string(cmd, v, PICK(&lg->rng, drug_names));
        break;
    case GEN_DOSE:
        set_string(cmd, v, PICK(&lg->rng, doses));
        break;
    case GEN_QUANTITY:
        set_long(v, 10 + rng_below(&lg->rng, 81));
        break;
    case GEN_REFILLS:
        set_long(v, rng_below(&lg->rng, 6));
        break;
    case GEN_RX_STATUS:
        set_string(cmd, v, PICK(&lg->rng, rx_statuses));
        break;
    }
}

/* Full rows for INSERT/UPSERT (required columns always, others mostly);
 * a random non-empty subset for UPDATE. */
static void gen_data(pgs_loadgen_t *lg, pgs_command_t *cmd, int clinic, const entity_spec_t *ent,
                     int full_row)
{
    int pick[16] = {0};
    size_t cnt = 0;
    for (size_t i = 0; i < ent->col_cnt; i++) {
        const col_spec_t *col = &ent->cols[i];
        if (col->kind == GEN_PHOTO)
            pick[i] = rng_unit(&lg->rng) < lg->opts.photo_ratio;
        else if (full_row)
            pick[i] = col->required || rng_unit(&lg->rng) < 0.85;
        else
            pick[i] = rng_unit(&lg->rng) < 0.3;
        cnt += (size_t)pick[i];
    }
    if (cnt == 0) {
        /* Photos are rare by design and are the last patient column. */
        size_t i = rng_below(&lg->rng, (uint32_t)ent->col_cnt - 1);
        pick[i] = 1;
        cnt = 1;
    }
    cmd->data = pgs_arena_alloc(cmd->arena, cnt * sizeof(*cmd->data));
    cmd->data_cnt = 0;
    for (size_t i = 0; i < ent->col_cnt; i++) {
        if (!pick[i])
            continue;
        const col_spec_t *col = &ent->cols[i];
        pgs_field_t *f = &cmd->data[cmd->data_cnt++];
        f->name = col->name;
        if (!col->not_null && rng_unit(&lg->rng) < lg->opts.null_ratio)
            f->value.type = PGS_VAL_NULL;
        else
            gen_value(lg, cmd, clinic, col->kind, &f->value);
    }
}

pgs_command_t *pgs_loadgen_next(pgs_loadgen_t *lg)
{
    char buf[64];
    int clinic = (int)rng_below(&lg->rng, (uint32_t)lg->clinics);
    uint32_t r = rng_below(&lg->rng, 100);
    int e = 0;
    for (uint32_t acc = 0; e < ENTITY_CNT - 1; e++) {
        acc += (uint32_t)entities[e].weight;
        if (r < acc)
            break;
    }
    const entity_spec_t *ent = &entities[e];
    key_pool_t *pool = &lg->pools[clinic * ENTITY_CNT + e];

    key_state_t *ks;
    if (pool->cnt > 0 && rng_unit(&lg->rng) < lg->opts.reuse_ratio) {
        ks = &pool->keys[rng_below(&lg->rng, (uint32_t)pool->cnt)];
    } else {
        ks = pool_add(pool);
        rng_uuid(&lg->rng, ks->id);
    }

    pgs_command_t *cmd = pgs_command_new();
    rng_uuid(&lg->rng, buf);
    cmd->command_id = pgs_arena_strdup(cmd->arena, buf);
    snprintf(buf, sizeof(buf), "clinic-%03d", clinic + 1);
    cmd->clinic_id = pgs_arena_strdup(cmd->arena, buf);
    if (rng_below(&lg->rng, 5) == 0)
        snprintf(buf, sizeof(buf), "svc-intake");
    else
        snprintf(buf, sizeof(buf), "user-%u", 1 + rng_below(&lg->rng, 40));
    cmd->actor = pgs_arena_strdup(cmd->arena, buf);
    cmd->entity = ent->name;
    cmd->issued_at_ms = lg->opts.base_time_ms + (int64_t)lg->seq++;
    cmd->key = pgs_arena_alloc(cmd->arena, sizeof(*cmd->key));
    cmd->key_cnt = 1;
    cmd->key[0].name = "id";
    set_string(cmd, &cmd->key[0].value, ks->id);

    r = rng_below(&lg->rng, 100);
    if (ks->live) {
        if (r < 50) {
            cmd->op = PGS_OP_UPDATE;
            cmd->has_expected_version = rng_below(&lg->rng, 2);
        } else if (r < 80) {
            cmd->op = PGS_OP_UPSERT;
            cmd->has_expected_version = rng_below(&lg->rng, 4) == 0;
        } else {
            cmd->op = PGS_OP_DELETE;
            cmd->has_expected_version = rng_below(&lg->rng, 2);
        }
        cmd->expected_version = cmd->has_expected_version ? ks->version : 0;
    } else {
        cmd->op = r < 70 ? PGS_OP_INSERT : PGS_OP_UPSERT;
    }

    if (cmd->op != PGS_OP_DELETE)
        gen_data(lg, cmd, clinic, ent, cmd->op != PGS_OP_UPDATE);

    if (cmd->op == PGS_OP_DELETE) {
        ks->live = 0;
        ks->version = 0;
    } else if (ks->live) {
        ks->version++;
    } else {
        ks->live = 1;
        ks->version = 1;
    }
    return cmd;
}

/* Audit-event vocabulary. Weights are percent; details carry addresses and
 * canned reasons only, never anything about a patient. */
typedef struct {
    const char *name;
    int weight;
} weighted_t;

static const weighted_t audit_actions[] = {
    {"READ", 50}, {"UPDATE", 14}, {"CREATE", 12}, {"LOGIN", 10}, {"EXPORT", 8}, {"DELETE", 6},
};
static const weighted_t audit_outcomes[] = {{"SUCCESS", 90}, {"DENIED", 7}, {"ERROR", 3}};
static const char *const audit_sources[] = {"svc-ehr", "svc-portal", "svc-scheduler",
                                            "svc-pharmacy", "svc-billing"};
static const char *const audit_services[] = {"svc-intake", "svc-reporting", "svc-sync"};
static const char *const audit_login_methods[] = {"password", "sso", "mfa"};
static const char *const denied_reasons[] = {"role not permitted", "outside care team",
                                             "session expired", "break-glass not granted"};
static const char *const error_reasons[] = {"upstream timeout", "validation failed",
                                            "storage unavailable"};

static const char *pick_weighted(rng_t *r, const weighted_t *w, size_t n)
{
    uint32_t x = rng_below(r, 100);
    for (size_t i = 0; i + 1 < n; i++) {
        if (x < (uint32_t)w[i].weight)
            return w[i].name;
        x -= (uint32_t)w[i].weight;
    }
    return w[n - 1].name;
}

static void audit_detail(pgs_audit_event_t *ev, const char *name, const char *value)
{
    pgs_field_t *f = &ev->details[ev->details_cnt++];
    f->name = name;
    f->value.type = PGS_VAL_STRING;
    f->value.u.s.ptr = pgs_arena_strdup(ev->arena, value);
    f->value.u.s.len = strlen(value);
}

pgs_audit_event_t *pgs_loadgen_next_audit(pgs_loadgen_t *lg)
{
    rng_t *r = &lg->audit_rng;
    char buf[64];
    pgs_audit_event_t *ev = pgs_command_audit_new();

    rng_uuid(r, buf);
    ev->event_id = pgs_arena_strdup(ev->arena, buf);
    snprintf(buf, sizeof(buf), "clinic-%03u", 1 + rng_below(r, (uint32_t)lg->clinics));
    ev->clinic_id = pgs_arena_strdup(ev->arena, buf);
    if (rng_below(r, 10) == 0)
        snprintf(buf, sizeof(buf), "%s", PICK(r, audit_services));
    else
        snprintf(buf, sizeof(buf), "user-%u", 1 + rng_below(r, 40));
    ev->actor = pgs_arena_strdup(ev->arena, buf);
    ev->action = pick_weighted(r, audit_actions, COUNT_OF(audit_actions));
    int login = strcmp(ev->action, "LOGIN") == 0;
    if (login) {
        ev->resource_type = "session";
        ev->resource_id = "";
    } else {
        ev->resource_type = entities[rng_below(r, ENTITY_CNT)].name;
        rng_uuid(r, buf);
        ev->resource_id = pgs_arena_strdup(ev->arena, buf);
    }
    ev->outcome = pick_weighted(r, audit_outcomes, COUNT_OF(audit_outcomes));
    ev->occurred_at_ms = lg->opts.base_time_ms + (int64_t)lg->audit_seq++;
    ev->source = PICK(r, audit_sources);

    ev->details = pgs_arena_alloc(ev->arena, 3 * sizeof(*ev->details));
    snprintf(buf, sizeof(buf), "10.0.%u.%u", rng_below(r, 256), 1 + rng_below(r, 254));
    audit_detail(ev, "ip", buf);
    if (login)
        audit_detail(ev, "method", PICK(r, audit_login_methods));
    if (strcmp(ev->outcome, "DENIED") == 0)
        audit_detail(ev, "reason", PICK(r, denied_reasons));
    else if (strcmp(ev->outcome, "ERROR") == 0)
        audit_detail(ev, "reason", PICK(r, error_reasons));
    return ev;
}

/* Appends like snprintf at offset *off, keeping the count of what the whole
 * key needs even after the buffer is full. */
static void key_append(char *buf, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void key_append(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = *off < size ? buf + *off : NULL;
    size_t room = *off < size ? size - *off : 0;
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

size_t pgs_loadgen_message_key(const pgs_command_t *cmd, char *buf, size_t size)
{
    size_t off = 0;
    if (size > 0)
        buf[0] = '\0';
    key_append(buf, size, &off, "%s/%s", cmd->clinic_id, cmd->entity);
    for (size_t i = 0; i < cmd->key_cnt; i++) {
        const pgs_value_t *v = &cmd->key[i].value;
        key_append(buf, size, &off, "/");
        switch (v->type) {
        case PGS_VAL_NULL:
            break;
        case PGS_VAL_BOOL:
        case PGS_VAL_LONG:
        case PGS_VAL_DOUBLE:
        case PGS_VAL_STRING: {
            char text[PGS_VALUE_TEXT_MAX];
            size_t n;
            const char *t = pgs_value_text(v, text, &n);
            key_append(buf, size, &off, "%.*s", (int)n, t);
            break;
        }
        case PGS_VAL_BYTES:
            for (size_t j = 0; j < v->u.s.len; j++)
                key_append(buf, size, &off, "%02x", (unsigned)(uint8_t)v->u.s.ptr[j]);
            break;
        }
    }
    return off;
}
