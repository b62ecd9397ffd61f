/* Unit tests of the pure parts of migrate: file names, ordering, checksums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "command/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_parse_name(void **state)
{
    int v = -1;
    (void)state;
    assert_int_equal(pgs_migrate_parse_name("0003_clinic_schema.sql", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(pgs_migrate_parse_name("12_x.sql", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(pgs_migrate_parse_name("0000_a.sql", &v), 0);
    assert_int_equal(v, 0);

    assert_int_equal(pgs_migrate_parse_name("0003_.sql", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("0003clinic.sql", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("_clinic.sql", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("abcd_clinic.sql", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("0003_clinic.sql.bak", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("0003_clinic.SQL", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("1234567890_big.sql", &v), -1);
    assert_int_equal(pgs_migrate_parse_name("", &v), -1);
}

static void test_checksum(void **state)
{
    char out[PGS_MIGRATE_CHECKSUM_LEN];
    (void)state;
    assert_int_equal(pgs_migrate_checksum("", 0, out), 0);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(pgs_migrate_checksum("abc", 3, out), 0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* one trailing byte changes it */
    assert_int_equal(pgs_migrate_checksum("abc\n", 4, out), 0);
    assert_string_not_equal(out,
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

typedef struct {
    char dir[64];
} tmpdir_t;

static void touch(const char *dir, const char *name)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("SELECT 1;\n", f);
    fclose(f);
}

static int dir_setup(void **state)
{
    tmpdir_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/pgs_test_migrate_XXXXXX");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int dir_teardown(void **state)
{
    tmpdir_t *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static void test_scan_sorts_by_number(void **state)
{
    tmpdir_t *t = *state;
    pgs_migrate_file_t *files = NULL;
    size_t n = 0;
    char errstr[256];

    touch(t->dir, "0010_ten.sql");
    touch(t->dir, "0002_two.sql");
    touch(t->dir, "0001_one.sql");
    touch(t->dir, "README.md");
    assert_int_equal(pgs_migrate_scan(t->dir, &files, &n, errstr, sizeof(errstr)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(files[0].version, 1);
    assert_string_equal(files[0].name, "0001_one.sql");
    assert_int_equal(files[1].version, 2);
    assert_int_equal(files[2].version, 10);
    assert_non_null(strstr(files[2].path, "/0010_ten.sql"));
    pgs_migrate_files_free(files, n);
}

static void test_scan_rejects_duplicate_version(void **state)
{
    tmpdir_t *t = *state;
    pgs_migrate_file_t *files = NULL;
    size_t n = 0;
    char errstr[256] = "";

    touch(t->dir, "0001_one.sql");
    touch(t->dir, "1_other.sql");
    assert_int_equal(pgs_migrate_scan(t->dir, &files, &n, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "same version 1"));
}

static void test_scan_rejects_misnamed_sql(void **state)
{
    tmpdir_t *t = *state;
    pgs_migrate_file_t *files = NULL;
    size_t n = 0;
    char errstr[256] = "";

    touch(t->dir, "0001_one.sql");
    touch(t->dir, "add_column.sql");
    assert_int_equal(pgs_migrate_scan(t->dir, &files, &n, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "add_column.sql"));
}

static void test_scan_missing_dir(void **state)
{
    pgs_migrate_file_t *files = NULL;
    size_t n = 0;
    char errstr[256] = "";
    (void)state;

    assert_int_equal(
        pgs_migrate_scan("/nonexistent/pgscribe/sql", &files, &n, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "/nonexistent/pgscribe/sql"));
}

#ifdef PGS_SOURCE_DIR
/* The shipped migrations themselves: contiguous from 1, none misnamed. */
static void test_shipped_migrations(void **state)
{
    pgs_migrate_file_t *files = NULL;
    size_t n = 0;
    char errstr[256];
    (void)state;

    assert_int_equal(
        pgs_migrate_scan(PGS_SOURCE_DIR "/schemas/sql", &files, &n, errstr, sizeof(errstr)), 0);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(files[i].version, (int)i + 1);
    pgs_migrate_files_free(files, n);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_name),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test_setup_teardown(test_scan_sorts_by_number, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_scan_rejects_duplicate_version, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_scan_rejects_misnamed_sql, dir_setup, dir_teardown),
        cmocka_unit_test(test_scan_missing_dir),
#ifdef PGS_SOURCE_DIR
        cmocka_unit_test(test_shipped_migrations),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
