/* Tests for the load generator: determinism, validity when replayed in
 * order against a model of the rows, key reuse, clinic coverage and mix;
 * audit events: determinism, independence from the command stream, field
 * rules, and a round trip through both encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "common/hash.h"
#include "command/loadgen.h"

#define N_COMMANDS 10000
#define N_CLINICS  20

/* The test's own copy of the schema rules, independent of the generator. */
typedef struct {
    const char *entity;
    const char *columns[16];
    const char *required[4]; /* NOT NULL without default */
    const char *not_null[4]; /* NOT NULL (with or without default) */
} schema_t;

static const schema_t schema[] = {
    {"patients",
     {"mrn", "given_name", "family_name", "birth_date", "sex", "phone", "email", "address",
      "weight_kg", "active", "notes", "photo"},
     {NULL},
     {"active"}},
    {"appointments",
     {"patient_id", "practitioner", "starts_at", "duration_min", "status", "reason"},
     {"patient_id", "starts_at"},
     {"patient_id", "starts_at", "status"}},
    {"encounters",
     {"patient_id", "appointment_id", "kind", "started_at", "ended_at", "diagnosis_code", "notes"},
     {"patient_id"},
     {"patient_id"}},
    {"prescriptions",
     {"patient_id", "encounter_id", "drug_code", "drug_name", "dose", "quantity", "refills",
      "status", "prescribed_at"},
     {"patient_id", "drug_code"},
     {"patient_id", "drug_code", "refills"}},
};

static const schema_t *schema_find(const char *entity)
{
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
        if (strcmp(schema[i].entity, entity) == 0)
            return &schema[i];
    return NULL;
}

static int in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n && list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

static const pgs_field_t *data_find(const pgs_command_t *cmd, const char *name)
{
    for (size_t i = 0; i < cmd->data_cnt; i++)
        if (strcmp(cmd->data[i].name, name) == 0)
            return &cmd->data[i];
    return NULL;
}

static int is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* Open-addressing map: "clinic/entity/id" -> row state. */
#define MAP_SLOTS 32768
typedef struct {
    char key[96];
    int used;
    int live;
    int64_t version;
    int hits;
} row_t;

static row_t *map_get(row_t *map, const char *key, size_t *distinct)
{
    uint64_t h = pgs_hash_fnv1a64(PGS_HASH_FNV1A64_INIT, key, strlen(key));
    for (size_t i = h % MAP_SLOTS;; i = (i + 1) % MAP_SLOTS) {
        if (!map[i].used) {
            map[i].used = 1;
            snprintf(map[i].key, sizeof(map[i].key), "%s", key);
            (*distinct)++;
            return &map[i];
        }
        if (strcmp(map[i].key, key) == 0)
            return &map[i];
    }
}

static int values_equal(const pgs_value_t *a, const pgs_value_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case PGS_VAL_NULL:
        return 1;
    case PGS_VAL_BOOL:
        return a->u.b == b->u.b;
    case PGS_VAL_LONG:
        return a->u.l == b->u.l;
    case PGS_VAL_DOUBLE:
        return a->u.d == b->u.d;
    case PGS_VAL_STRING:
    case PGS_VAL_BYTES:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    }
    return 0;
}

static int fields_equal(const pgs_field_t *a, size_t an, const pgs_field_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (strcmp(a[i].name, b[i].name) != 0 || !values_equal(&a[i].value, &b[i].value))
            return 0;
    return 1;
}

static int commands_equal(const pgs_command_t *a, const pgs_command_t *b)
{
    return strcmp(a->command_id, b->command_id) == 0 && strcmp(a->clinic_id, b->clinic_id) == 0 &&
           strcmp(a->actor, b->actor) == 0 && strcmp(a->entity, b->entity) == 0 && a->op == b->op &&
           a->has_expected_version == b->has_expected_version &&
           a->expected_version == b->expected_version && a->issued_at_ms == b->issued_at_ms &&
           fields_equal(a->key, a->key_cnt, b->key, b->key_cnt) &&
           fields_equal(a->data, a->data_cnt, b->data, b->data_cnt);
}

static void test_same_seed_same_sequence(void **state)
{
    (void)state;
    pgs_loadgen_t *a = pgs_loadgen_new(42, N_CLINICS, NULL);
    pgs_loadgen_t *b = pgs_loadgen_new(42, N_CLINICS, NULL);
    pgs_loadgen_t *c = pgs_loadgen_new(43, N_CLINICS, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    int differs_from_other_seed = 0;
    for (int i = 0; i < 3000; i++) {
        pgs_command_t *ca = pgs_loadgen_next(a);
        pgs_command_t *cb = pgs_loadgen_next(b);
        pgs_command_t *cc = pgs_loadgen_next(c);
        assert_true(commands_equal(ca, cb));
        differs_from_other_seed |= !commands_equal(ca, cc);
        pgs_command_free(ca);
        pgs_command_free(cb);
        pgs_command_free(cc);
    }
    assert_true(differs_from_other_seed);
    pgs_loadgen_free(a);
    pgs_loadgen_free(b);
    pgs_loadgen_free(c);
}

static int is_timestamp_with_zone(const char *s)
{
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[10] != 'T')
        return 0;
    if (s[n - 1] == 'Z')
        return 1;
    return n >= 6 && (s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':';
}

/* Replays the stream against a model of the rows: every command must be
 * one that pgscribe applies without error. */
static void test_commands_valid_in_order(void **state)
{
    (void)state;
    row_t *map = calloc(MAP_SLOTS, sizeof(*map));
    assert_non_null(map);
    size_t distinct = 0;
    int op_cnt[4] = {0}, ev_cnt[4] = {0}, entity_cnt[4] = {0}, reinserts = 0, photos = 0;
    int nulls = 0, doubles = 0;
    pgs_loadgen_opts_t opts;
    pgs_loadgen_opts_default(&opts);
    pgs_loadgen_t *lg = pgs_loadgen_new(7, N_CLINICS, &opts);
    assert_non_null(lg);
    char *ids = calloc(N_COMMANDS, 37);
    assert_non_null(ids);

    for (int n = 0; n < N_COMMANDS; n++) {
        pgs_command_t *cmd = pgs_loadgen_next(lg);
        const schema_t *sch = schema_find(cmd->entity);
        assert_non_null(sch);
        entity_cnt[sch - schema]++;
        assert_true(is_uuid_v4(cmd->command_id));
        memcpy(ids + (size_t)n * 37, cmd->command_id, 37);
        assert_int_equal(cmd->issued_at_ms, opts.base_time_ms + n);
        assert_true(strncmp(cmd->actor, "user-", 5) == 0 || strcmp(cmd->actor, "svc-intake") == 0);
        int clinic_no = 0;
        assert_int_equal(sscanf(cmd->clinic_id, "clinic-%3d", &clinic_no), 1);
        assert_int_equal(strlen(cmd->clinic_id), 10);
        assert_in_range(clinic_no, 1, N_CLINICS);

        assert_int_equal(cmd->key_cnt, 1);
        assert_string_equal(cmd->key[0].name, "id");
        assert_int_equal(cmd->key[0].value.type, PGS_VAL_STRING);
        assert_true(is_uuid_v4(cmd->key[0].value.u.s.ptr));

        for (size_t i = 0; i < cmd->data_cnt; i++) {
            const pgs_field_t *f = &cmd->data[i];
            assert_true(in_list(sch->columns, 16, f->name)); /* never id, version, ... */
            if (f->value.type == PGS_VAL_NULL) {
                assert_false(in_list(sch->not_null, 4, f->name));
                nulls++;
            }
            photos += f->value.type == PGS_VAL_BYTES;
            doubles += f->value.type == PGS_VAL_DOUBLE;
            if (strstr(f->name, "_at") && f->value.type == PGS_VAL_STRING)
                assert_true(is_timestamp_with_zone(f->value.u.s.ptr));
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(cmd->data[j].name, f->name);
        }
        if (cmd->op == PGS_OP_INSERT || cmd->op == PGS_OP_UPSERT)
            for (size_t r = 0; r < 4 && sch->required[r]; r++)
                assert_non_null(data_find(cmd, sch->required[r]));

        char key[96];
        snprintf(key, sizeof(key), "%s/%s/%s", cmd->clinic_id, cmd->entity,
                 cmd->key[0].value.u.s.ptr);
        row_t *row = map_get(map, key, &distinct);
        row->hits++;
        op_cnt[cmd->op]++;
        ev_cnt[cmd->op] += cmd->has_expected_version;
        if (cmd->has_expected_version) {
            assert_true(row->live);
            assert_int_equal(cmd->expected_version, row->version);
        }
        switch (cmd->op) {
        case PGS_OP_INSERT:
            assert_false(row->live);
            reinserts += row->hits > 1;
            row->live = 1;
            row->version = 1;
            break;
        case PGS_OP_UPSERT:
            row->version = row->live ? row->version + 1 : 1;
            row->live = 1;
            break;
        case PGS_OP_UPDATE:
            assert_true(row->live);
            assert_true(cmd->data_cnt >= 1);
            row->version++;
            break;
        case PGS_OP_DELETE:
            assert_true(row->live);
            assert_int_equal(cmd->data_cnt, 0);
            row->live = 0;
            break;
        }
        pgs_command_free(cmd);
    }

    /* Command ids never repeat: a repeat would be skipped as a duplicate. */
    qsort(ids, N_COMMANDS, 37, (int (*)(const void *, const void *))strcmp);
    for (int n = 1; n < N_COMMANDS; n++)
        assert_string_not_equal(ids + (size_t)(n - 1) * 37, ids + (size_t)n * 37);

    /* Keys repeat a lot, and every op shape shows up. */
    assert_true(distinct < N_COMMANDS * 7 / 10);
    for (int op = 0; op < 4; op++)
        assert_true(op_cnt[op] > N_COMMANDS / 20);
    assert_true(ev_cnt[PGS_OP_UPDATE] > 0);
    assert_true(ev_cnt[PGS_OP_UPSERT] > 0);
    assert_true(ev_cnt[PGS_OP_DELETE] > 0);
    assert_true(reinserts > 0);
    assert_true(photos > 0);
    assert_true(nulls > 0);
    assert_true(doubles > 0);

    /* Mix: 40/30/20/10 within five points. */
    const int want[4] = {40, 30, 20, 10};
    for (int e = 0; e < 4; e++)
        assert_in_range(entity_cnt[e] * 100, (want[e] - 5) * N_COMMANDS,
                        (want[e] + 5) * N_COMMANDS);

    free(ids);
    free(map);
    pgs_loadgen_free(lg);
}

static void test_all_clinics_appear(void **state)
{
    (void)state;
    int seen[N_CLINICS + 1] = {0};
    pgs_loadgen_t *lg = pgs_loadgen_new(1, N_CLINICS, NULL);
    for (int n = 0; n < N_COMMANDS; n++) {
        pgs_command_t *cmd = pgs_loadgen_next(lg);
        int no = atoi(cmd->clinic_id + strlen("clinic-"));
        assert_in_range(no, 1, N_CLINICS);
        seen[no]++;
        pgs_command_free(cmd);
    }
    for (int c = 1; c <= N_CLINICS; c++)
        assert_true(seen[c] > 0);
    pgs_loadgen_free(lg);
}

static void test_reuse_ratio_option(void **state)
{
    (void)state;
    pgs_loadgen_opts_t opts;
    pgs_loadgen_opts_default(&opts);
    opts.reuse_ratio = 0.0;
    pgs_loadgen_t *lg = pgs_loadgen_new(5, 3, &opts);
    for (int n = 0; n < 500; n++) {
        pgs_command_t *cmd = pgs_loadgen_next(lg);
        /* Every key is new, so only the ops for absent rows appear. */
        assert_true(cmd->op == PGS_OP_INSERT || cmd->op == PGS_OP_UPSERT);
        assert_false(cmd->has_expected_version);
        pgs_command_free(cmd);
    }
    pgs_loadgen_free(lg);
}

static void test_new_rejects_bad_clinic_count(void **state)
{
    (void)state;
    assert_null(pgs_loadgen_new(1, 0, NULL));
    assert_null(pgs_loadgen_new(1, 1000, NULL));
    pgs_loadgen_t *lg = pgs_loadgen_new(1, 999, NULL);
    assert_non_null(lg);
    pgs_loadgen_free(lg);
}

static void test_message_key(void **state)
{
    (void)state;
    pgs_command_t *cmd = pgs_command_new();
    cmd->clinic_id = "clinic-007";
    cmd->entity = "patients";
    pgs_field_t key[4] = {{.name = "id", .value = {.type = PGS_VAL_STRING}},
                          {.name = "n", .value = {.type = PGS_VAL_LONG}},
                          {.name = "b", .value = {.type = PGS_VAL_BOOL}},
                          {.name = "raw", .value = {.type = PGS_VAL_BYTES}}};
    key[0].value.u.s.ptr = "abc";
    key[0].value.u.s.len = 3;
    key[1].value.u.l = -12;
    key[2].value.u.b = 1;
    key[3].value.u.s.ptr = "\x01\xff";
    key[3].value.u.s.len = 2;
    cmd->key = key;
    cmd->key_cnt = 1;

    char buf[128];
    assert_int_equal(pgs_loadgen_message_key(cmd, buf, sizeof(buf)), 23);
    assert_string_equal(buf, "clinic-007/patients/abc");

    cmd->key_cnt = 4;
    size_t need = pgs_loadgen_message_key(cmd, buf, sizeof(buf));
    assert_string_equal(buf, "clinic-007/patients/abc/-12/true/01ff");
    assert_int_equal(need, strlen(buf));

    /* Truncated output still reports the full length and stays terminated. */
    char small[8];
    assert_int_equal(pgs_loadgen_message_key(cmd, small, sizeof(small)), need);
    assert_string_equal(small, "clinic-");
    pgs_command_free(cmd);
}

#define N_AUDIT 5000

static int audit_equal(const pgs_audit_event_t *a, const pgs_audit_event_t *b)
{
    return strcmp(a->event_id, b->event_id) == 0 && strcmp(a->clinic_id, b->clinic_id) == 0 &&
           strcmp(a->actor, b->actor) == 0 && strcmp(a->action, b->action) == 0 &&
           strcmp(a->resource_type, b->resource_type) == 0 &&
           strcmp(a->resource_id, b->resource_id) == 0 && strcmp(a->outcome, b->outcome) == 0 &&
           a->occurred_at_ms == b->occurred_at_ms && strcmp(a->source, b->source) == 0 &&
           fields_equal(a->details, a->details_cnt, b->details, b->details_cnt);
}

static const pgs_field_t *detail_find(const pgs_audit_event_t *ev, const char *name)
{
    for (size_t i = 0; i < ev->details_cnt; i++)
        if (strcmp(ev->details[i].name, name) == 0)
            return &ev->details[i];
    return NULL;
}

/* Same seed, same events; and drawing commands in between changes neither
 * stream, so `produce --audit` and `produce` agree with any mix of both. */
static void test_audit_deterministic_and_apart(void **state)
{
    (void)state;
    pgs_loadgen_t *a = pgs_loadgen_new(3, N_CLINICS, NULL);
    pgs_loadgen_t *b = pgs_loadgen_new(3, N_CLINICS, NULL);
    pgs_loadgen_t *c = pgs_loadgen_new(4, N_CLINICS, NULL);
    pgs_loadgen_t *cmds_only = pgs_loadgen_new(3, N_CLINICS, NULL);
    int differs_from_other_seed = 0;
    for (int i = 0; i < 2000; i++) {
        pgs_audit_event_t *ea = pgs_loadgen_next_audit(a);
        pgs_command_t *cb = pgs_loadgen_next(b);
        pgs_command_t *cref = pgs_loadgen_next(cmds_only);
        assert_true(commands_equal(cb, cref));
        pgs_audit_event_t *eb = pgs_loadgen_next_audit(b);
        pgs_audit_event_t *ec = pgs_loadgen_next_audit(c);
        assert_true(audit_equal(ea, eb));
        differs_from_other_seed |= !audit_equal(ea, ec);
        pgs_command_audit_free(ea);
        pgs_command_audit_free(eb);
        pgs_command_audit_free(ec);
        pgs_command_free(cb);
        pgs_command_free(cref);
    }
    assert_true(differs_from_other_seed);
    pgs_loadgen_free(a);
    pgs_loadgen_free(b);
    pgs_loadgen_free(c);
    pgs_loadgen_free(cmds_only);
}

static void test_audit_fields_valid(void **state)
{
    (void)state;
    static const char *const actions[] = {"READ", "CREATE", "UPDATE", "DELETE", "EXPORT", "LOGIN"};
    static const char *const outcomes[] = {"SUCCESS", "DENIED", "ERROR"};
    static const char *const resources[] = {"patients", "appointments", "encounters",
                                            "prescriptions"};
    int action_cnt[6] = {0}, outcome_cnt[3] = {0}, clinic_cnt[N_CLINICS + 1] = {0};
    int services = 0;
    pgs_loadgen_opts_t opts;
    pgs_loadgen_opts_default(&opts);
    pgs_loadgen_t *lg = pgs_loadgen_new(11, N_CLINICS, &opts);
    char *ids = calloc(N_AUDIT, 37);
    assert_non_null(ids);

    for (int n = 0; n < N_AUDIT; n++) {
        pgs_audit_event_t *ev = pgs_loadgen_next_audit(lg);
        assert_true(is_uuid_v4(ev->event_id));
        memcpy(ids + (size_t)n * 37, ev->event_id, 37);

        int clinic_no = 0;
        assert_int_equal(strlen(ev->clinic_id), 10);
        assert_int_equal(sscanf(ev->clinic_id, "clinic-%3d", &clinic_no), 1);
        assert_in_range(clinic_no, 1, N_CLINICS);
        clinic_cnt[clinic_no]++;

        int is_user = strncmp(ev->actor, "user-", 5) == 0 && atoi(ev->actor + 5) >= 1;
        int is_svc = strncmp(ev->actor, "svc-", 4) == 0 && strlen(ev->actor) > 4;
        assert_true(is_user || is_svc);
        services += is_svc;

        int a = 0;
        while (a < 6 && strcmp(actions[a], ev->action) != 0)
            a++;
        assert_in_range(a, 0, 5);
        action_cnt[a]++;
        if (strcmp(ev->action, "LOGIN") == 0) {
            assert_string_equal(ev->resource_type, "session");
            assert_string_equal(ev->resource_id, "");
            assert_non_null(detail_find(ev, "method"));
        } else {
            assert_true(in_list(resources, 4, ev->resource_type));
            assert_true(is_uuid_v4(ev->resource_id));
            assert_null(detail_find(ev, "method"));
        }

        int o = 0;
        while (o < 3 && strcmp(outcomes[o], ev->outcome) != 0)
            o++;
        assert_in_range(o, 0, 2);
        outcome_cnt[o]++;
        /* A reason explains a failure and nothing else. */
        assert_true((detail_find(ev, "reason") != NULL) == (o != 0));

        assert_int_equal(ev->occurred_at_ms, opts.base_time_ms + n);
        assert_true(strncmp(ev->source, "svc-", 4) == 0 && strlen(ev->source) > 4);

        const pgs_field_t *ip = detail_find(ev, "ip");
        assert_non_null(ip);
        unsigned x = 0, y = 0;
        char tail;
        assert_int_equal(sscanf(ip->value.u.s.ptr, "10.0.%u.%u%c", &x, &y, &tail), 2);
        assert_true(x <= 255 && y >= 1 && y <= 254);
        assert_in_range(ev->details_cnt, 1, 3);
        for (size_t i = 0; i < ev->details_cnt; i++) {
            assert_int_equal(ev->details[i].value.type, PGS_VAL_STRING);
            assert_int_equal(ev->details[i].value.u.s.len, strlen(ev->details[i].value.u.s.ptr));
            for (size_t j = 0; j < i; j++)
                assert_string_not_equal(ev->details[j].name, ev->details[i].name);
        }
        pgs_command_audit_free(ev);
    }

    /* Event ids never repeat: a repeat would be stored only once. */
    qsort(ids, N_AUDIT, 37, (int (*)(const void *, const void *))strcmp);
    for (int n = 1; n < N_AUDIT; n++)
        assert_string_not_equal(ids + (size_t)(n - 1) * 37, ids + (size_t)n * 37);

    for (int a = 0; a < 6; a++)
        assert_true(action_cnt[a] > 0);
    assert_true(outcome_cnt[0] > N_AUDIT * 8 / 10); /* mostly SUCCESS */
    assert_true(outcome_cnt[1] > 0);
    assert_true(outcome_cnt[2] > 0);
    assert_true(services > 0 && services < N_AUDIT / 4);
    /* Uniform over clinics: each gets 250 on average; 150 is far outside chance. */
    for (int c = 1; c <= N_CLINICS; c++)
        assert_in_range(clinic_cnt[c], 150, 350);

    free(ids);
    pgs_loadgen_free(lg);
}

/* Every generated event passes the decoder's checks, in both encodings, and
 * comes back unchanged. */
static void test_audit_round_trip(void **state)
{
    (void)state;
    char errstr[256];
    pgs_codec_t *codec = pgs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    pgs_loadgen_t *lg = pgs_loadgen_new(5, 7, NULL);
    for (int n = 0; n < 500; n++) {
        pgs_audit_event_t *ev = pgs_loadgen_next_audit(lg);
        for (int json = 0; json <= 1; json++) {
            char *buf = NULL;
            size_t len = 0;
            assert_int_equal(pgs_codec_encode_audit(codec, ev, json, &buf, &len), 0);
            if (!json) {
                assert_int_equal((unsigned char)buf[0], 0);
                assert_int_equal((unsigned char)buf[4], PGS_SCHEMA_ID_AUDIT_EVENT_V1);
            }
            pgs_audit_event_t *back = NULL;
            assert_int_equal(
                pgs_codec_decode_audit(codec, buf, len, json, &back, errstr, sizeof(errstr)),
                PGS_OK);
            assert_true(audit_equal(ev, back));
            pgs_command_audit_free(back);
            free(buf);
        }
        pgs_command_audit_free(ev);
    }
    pgs_loadgen_free(lg);
    pgs_codec_free(codec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_commands_valid_in_order),
        cmocka_unit_test(test_all_clinics_appear),
        cmocka_unit_test(test_reuse_ratio_option),
        cmocka_unit_test(test_new_rejects_bad_clinic_count),
        cmocka_unit_test(test_message_key),
        cmocka_unit_test(test_audit_deterministic_and_apart),
        cmocka_unit_test(test_audit_fields_valid),
        cmocka_unit_test(test_audit_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
