/* Tests for the load generator: determinism, validity when replayed in
 * order against a model of the rows, key reuse, clinic coverage and mix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgscribe/loadgen.h"

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
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
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
    pgs_field_t key[4] = {{"id", {.type = PGS_VAL_STRING}},
                          {"n", {.type = PGS_VAL_LONG}},
                          {"b", {.type = PGS_VAL_BOOL}},
                          {"raw", {.type = PGS_VAL_BYTES}}};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_commands_valid_in_order),
        cmocka_unit_test(test_all_clinics_appear),
        cmocka_unit_test(test_reuse_ratio_option),
        cmocka_unit_test(test_new_rejects_bad_clinic_count),
        cmocka_unit_test(test_message_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
