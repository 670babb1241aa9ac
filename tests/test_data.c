/* chainz-data files (include/chainz/data.h): write/open round trip of features, labels
 * and attributes, the shared mapping of contiguous float32 files, row gathering in the
 * asked order, errors naming the file, atomic writing, and a chunked deflated /features
 * loaded whole (the rows of the hyperslab path, bit for bit). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "chainz/data.h"
#include "chainz/rng.h"

enum { N = 50, D = 6 };

typedef struct {
    char dir[64];
    char path[128];
    float x[N * D];
    int32_t yc[N];
    float yv[N];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/chainz-test-data-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/set.h5", f->dir);
    cz_rng r;
    cz_rng_seed(&r, 99);
    for (size_t i = 0; i < N * D; i++) f->x[i] = (float)(3.0 * cz_rng_normal(&r));
    for (size_t i = 0; i < N; i++) {
        f->yc[i] = (int32_t)cz_rng_below(&r, 4);
        f->yv[i] = (float)(100.0 * cz_rng_normal(&r));
    }
    f->yc[0] = 0; /* both ends of the class range occur */
    f->yc[1] = 3;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_data_classify_round_trip(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4,
                                   "unit test: 50 gaussian rows", &err), 0);
    cz_data *ds = NULL;
    int rc = cz_data_open(&ds, f->path, &err);
    if (rc) print_error("open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(ds);
    const cz_data_info *info = cz_data_get_info(ds);
    assert_int_equal(info->n, N);
    assert_int_equal(info->d, D);
    assert_int_equal(info->task, CZ_HEAD_CLASSIFY);
    assert_int_equal(info->classes, 4);
    assert_string_equal(info->source, "unit test: 50 gaussian rows");
    assert_string_equal(cz_data_path(ds), f->path);
    assert_non_null(cz_data_labels_class(ds));
    assert_null(cz_data_labels_value(ds));
    assert_memory_equal(cz_data_labels_class(ds), f->yc, sizeof f->yc);
    /* a contiguous float32 file is served from the shared mapping */
    assert_int_equal(cz_data_is_mapped(ds), 1);
    float all[N * D];
    uint64_t idx[N];
    for (size_t i = 0; i < N; i++) idx[i] = i;
    assert_int_equal(cz_data_read_rows(ds, idx, N, all, &err), 0);
    assert_memory_equal(all, f->x, sizeof all);
    cz_data_close(ds);
}

static void test_data_ordinal_round_trip(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_ORDINAL, 5, NULL, &err), 0);
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    assert_int_equal(cz_data_get_info(ds)->task, CZ_HEAD_ORDINAL);
    assert_int_equal(cz_data_get_info(ds)->classes, 5);
    assert_string_equal(cz_data_get_info(ds)->source, "");
    assert_memory_equal(cz_data_labels_class(ds), f->yc, sizeof f->yc);
    cz_data_close(ds);
}

static void test_data_regress_round_trip(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, NULL, f->yv, N, D, CZ_HEAD_REGRESS, 0,
                                   "regression", &err), 0);
    cz_data *ds = NULL;
    int rc = cz_data_open(&ds, f->path, &err);
    if (rc) print_error("open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    const cz_data_info *info = cz_data_get_info(ds);
    assert_int_equal(info->task, CZ_HEAD_REGRESS);
    assert_int_equal(info->classes, 0);
    assert_int_equal(info->n, N);
    assert_null(cz_data_labels_class(ds));
    assert_non_null(cz_data_labels_value(ds));
    assert_memory_equal(cz_data_labels_value(ds), f->yv, sizeof f->yv);
    cz_data_close(ds);
}

static void test_data_rows_in_asked_order(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "s", &err), 0);
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    const uint64_t idx[7] = {42, 7, 49, 0, 19, 3, 18};
    float got[7 * D];
    memset(got, 0xff, sizeof got);
    assert_int_equal(cz_data_read_rows(ds, idx, 7, got, &err), 0);
    for (size_t r = 0; r < 7; r++) assert_memory_equal(got + r * D, f->x + idx[r] * D, D * sizeof(float));
    /* a shuffled whole epoch */
    cz_rng rng;
    cz_rng_seed(&rng, 5);
    uint64_t perm[N];
    cz_rng_permutation(&rng, perm, N);
    float all[N * D];
    assert_int_equal(cz_data_read_rows(ds, perm, N, all, &err), 0);
    for (size_t r = 0; r < N; r++) assert_memory_equal(all + r * D, f->x + perm[r] * D, D * sizeof(float));
    /* zero rows is not an error */
    assert_int_equal(cz_data_read_rows(ds, idx, 0, got, &err), 0);
    cz_data_close(ds);
}

static void test_data_row_out_of_range_names_file(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "s", &err), 0);
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    const uint64_t idx[3] = {1, N, 2};
    float got[3 * D];
    int rc = cz_data_read_rows(ds, idx, 3, got, &err);
    assert_int_equal(rc, CZ_EINVAL);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "50"));
    const uint64_t huge = UINT64_MAX;
    assert_int_not_equal(cz_data_read_rows(ds, &huge, 1, got, &err), 0);
    assert_non_null(strstr(err.msg, f->path));
    cz_data_close(ds);
}

static void test_data_non_finite_row_names_file_and_row(void **state)
{
    fixture *f = *state;
    f->x[5 * D + 2] = NAN;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "s", &err), 0);
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    const uint64_t ok[2] = {4, 6}, bad[2] = {4, 5};
    float got[2 * D];
    assert_int_equal(cz_data_read_rows(ds, ok, 2, got, &err), 0);
    assert_int_equal(cz_data_read_rows(ds, bad, 2, got, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "row 5"));
    cz_data_close(ds);
}

static void test_data_write_is_atomic(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "first", &err), 0);
    assert_int_equal(entries_in(f->dir), 1);
    /* replacing an existing file: the new contents, still one file */
    for (size_t i = 0; i < N * D; i++) f->x[i] = -f->x[i];
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "second", &err), 0);
    assert_int_equal(entries_in(f->dir), 1);
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    assert_string_equal(cz_data_get_info(ds)->source, "second");
    const uint64_t idx = 10;
    float row[D];
    assert_int_equal(cz_data_read_rows(ds, &idx, 1, row, &err), 0);
    assert_memory_equal(row, f->x + 10 * D, sizeof row);
    cz_data_close(ds);
    /* a write that cannot be made leaves nothing behind either */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/missing/set.h5", f->dir);
    assert_int_not_equal(cz_data_write(nodir, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "x", &err), 0);
    assert_non_null(strstr(err.msg, nodir));
    assert_int_equal(entries_in(f->dir), 1);
}

static void test_data_open_errors_name_file(void **state)
{
    fixture *f = *state;
    cz_error err = {0};
    cz_data *ds = (cz_data *)1;
    assert_int_not_equal(cz_data_open(&ds, f->path, &err), 0); /* missing */
    assert_null(ds);
    assert_non_null(strstr(err.msg, f->path));
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("a,b,label\n1,2,0\n", fp);
    fclose(fp);
    memset(&err, 0, sizeof err);
    assert_int_equal(cz_data_open(&ds, f->path, &err), CZ_EINVAL); /* not HDF5 */
    assert_null(ds);
    assert_non_null(strstr(err.msg, f->path));
    /* labels outside 0..K-1 are refused when opening */
    f->yc[7] = 4;
    assert_int_equal(cz_data_write(f->path, f->x, f->yc, NULL, N, D, CZ_HEAD_CLASSIFY, 4, "s", &err), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(cz_data_open(&ds, f->path, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "row 7"));
    cz_data_close(NULL); /* NULL-safe */
}

/* a FIFO (or a directory) as the data file blocked forever in H5Fopen: refused at once */
static void test_data_refuses_non_regular_file(void **state)
{
    fixture *f = *state;
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo.h5", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    cz_data *ds = NULL;
    cz_error err = {0};
    assert_int_equal(cz_data_open(&ds, fifo, &err), CZ_EINVAL);
    assert_null(ds);
    assert_non_null(strstr(err.msg, "not a regular file (a FIFO)"));
    assert_non_null(strstr(err.msg, fifo));
    assert_int_equal(cz_data_open(&ds, f->dir, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "directory"));
}

/* f->x as /features [N x D] in chunks of 7 x 4 with shuffle and deflate (what h5py's
 * chunks=, compression='gzip' makes), int32 labels, the chainz-data attributes */
static void write_chunked(const fixture *f)
{
    hid_t file = H5Fcreate(f->path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {N, D}, chunk[2] = {7, 4}, n = N;
    hid_t sp = H5Screate_simple(2, dims, NULL), lsp = H5Screate_simple(1, &n, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    hid_t x = H5Dcreate2(file, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hid_t y = H5Dcreate2(file, "labels", H5T_STD_I32LE, lsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Dwrite(x, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->x) >= 0);
    assert_true(H5Dwrite(y, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->yc) >= 0);
    hid_t as = H5Screate(H5S_SCALAR), st = H5Tcopy(H5T_C_S1);
    const char *names[2] = {"format", "task"}, *vals[2] = {"chainz-data", "classify"};
    for (int i = 0; i < 2; i++) {
        H5Tset_size(st, strlen(vals[i]));
        hid_t a = H5Acreate2(file, names[i], st, as, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, st, vals[i]);
        H5Aclose(a);
    }
    const char *inames[2] = {"version", "classes"};
    int ivals[2] = {1, 4};
    for (int i = 0; i < 2; i++) {
        hid_t a = H5Acreate2(file, inames[i], H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &ivals[i]);
        H5Aclose(a);
    }
    H5Tclose(st);
    H5Sclose(as);
    H5Dclose(x);
    H5Dclose(y);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Sclose(lsp);
    H5Fclose(file);
}

static void test_data_chunked_loads_whole_bit_for_bit(void **state)
{
    fixture *f = *state;
    f->x[5 * D + 2] = NAN;
    write_chunked(f);
    cz_error err = {0};
    cz_data *ds = NULL;
    assert_int_equal(cz_data_open(&ds, f->path, &err), 0);
    cz_data_layout lay;
    cz_data_get_layout(ds, &lay);
    assert_int_equal(lay.chunked, 1);
    assert_int_equal(lay.chunk[0], 7);
    assert_int_equal(lay.chunk[1], 4);
    assert_string_equal(lay.filters, "shuffle+deflate level 4");
    assert_int_equal(lay.bytes, N * D * sizeof(float));
    assert_int_equal(cz_data_is_mapped(ds), 0);
    /* the hyperslab path first, then the loaded matrix: the same bytes for every row */
    cz_rng rng;
    cz_rng_seed(&rng, 5);
    uint64_t perm[N - 1];
    for (size_t i = 0, k = 0; i < N; i++)
        if (i != 5) perm[k++] = i;
    float slab[(N - 1) * D], mem[(N - 1) * D], *all = malloc(lay.bytes);
    assert_non_null(all);
    assert_int_equal(cz_data_read_rows(ds, perm, N - 1, slab, &err), 0);
    memset(all, 0xff, lay.bytes);
    assert_int_equal(cz_data_load_features(ds, all, &err), 0);
    assert_memory_equal(all, f->x, 5 * D * sizeof(float));
    cz_data_attach_features(ds, all);
    assert_int_equal(cz_data_in_memory(ds), 1);
    assert_int_equal(cz_data_read_rows(ds, perm, N - 1, mem, &err), 0);
    assert_memory_equal(mem, slab, sizeof slab);
    for (size_t r = 0; r < N - 1; r++) assert_memory_equal(mem + r * D, f->x + perm[r] * D, D * sizeof(float));
    /* a bad value is still named when its row is served from memory */
    const uint64_t bad[2] = {4, 5};
    assert_int_equal(cz_data_read_rows(ds, bad, 2, mem, &err), CZ_EINVAL);
    assert_non_null(strstr(err.msg, "row 5 column 2"));
    cz_data_close(ds);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_data_classify_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_ordinal_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_regress_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_rows_in_asked_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_row_out_of_range_names_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_non_finite_row_names_file_and_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_write_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_open_errors_name_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_refuses_non_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_chunked_loads_whole_bit_for_bit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
