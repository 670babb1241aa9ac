/* Hostile chainz-data fixtures for tests/test_bad_inputs.sh, written with HDF5 directly
 * (the way a user's script, or an attacker, could write them):
 *
 *   make_bad_data huge-d OUT          /features [2, 2^61] float32 (chunked, never written)
 *   make_bad_data classes OUT K       a good small set whose attribute classes is K (int64)
 *   make_bad_data version OUT V       a good small set with version V (V = -1: no attribute)
 *   make_bad_data extlink OUT OTHER   OUT's /features is an external link to OTHER:/features
 *   make_bad_data f64big OUT          float64 features, one value 1e300
 *   make_bad_data label64 OUT         int64 labels, one label 2^32
 *   make_bad_data regress OUT SCALE   regression targets SCALE + w.x (e.g. 1e7)
 *   make_bad_data external OUT BIN    /features stored in the external raw file BIN (written
 *                                     whole; the test shortens it)
 *   make_bad_data virtual OUT OTHER   /features a virtual dataset mapping OTHER:/features
 *   make_bad_data chunkraw OUT ROWS [SHIFT]  ROWS x D float32 features (+ SHIFT), chunked,
 *                                     no compression
 *   make_bad_data virtual-self OUT    /features a virtual dataset over /x in the same file
 *   make_bad_data labels-virtual OUT OTHER  /labels a virtual dataset mapping OTHER:/labels
 *
 * Good sets have 64 rows, d = 4, 3 classes, labels 0..2. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 64, D = 4 };

static void attr_str(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void attr_i64(hid_t f, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void write1(hid_t f, const char *name, hid_t ft, hid_t mt, hsize_t n, const void *v)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(ds);
    H5Sclose(sp);
}

static void write_features(hid_t f, hid_t ft, const double *x, hsize_t n, hsize_t d)
{
    hsize_t dims[2] = {n, d};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "features", ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* a deterministic, learnable set: class = argmax of the first 3 features' sums */
static void good_set(double *x, long long *y, double *yv, double scale)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < D; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i * D + j] = (double)(s >> 11) / 9007199254740992.0 * 2 - 1;
            sum += (j + 1) * x[i * D + j];
        }
        y[i] = i % 3;
        yv[i] = scale + sum;
    }
}

static hid_t create(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "make_bad_data: cannot create %s\n", path);
        exit(2);
    }
    return f;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: make_bad_data MODE OUT [ARG]\n");
        return 1;
    }
    const char *mode = argv[1], *out = argv[2], *arg = argc > 3 ? argv[3] : "";
    double x[N * D], yv[N];
    long long y[N];
    good_set(x, y, yv, 0);
    hid_t f = create(out);
    const char *task = "classify";
    long long classes = 3, version = 1;
    if (!strcmp(mode, "huge-d")) {
        hsize_t dims[2] = {2, (hsize_t)1 << 61}, chunk[2] = {1, 1024};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 2, chunk);
        hid_t ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
        int lab[2] = {0, 1};
        write1(f, "labels", H5T_STD_I32LE, H5T_NATIVE_INT, 2, lab);
        classes = 2;
    } else if (!strcmp(mode, "extlink")) {
        H5Lcreate_external(arg, "/features", f, "features", H5P_DEFAULT, H5P_DEFAULT);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, N, y);
        /* padding: OUT is then long enough for a mapping at OTHER's offset of /features */
        static double pad[16384];
        for (int i = 0; i < 16384; i++) pad[i] = -7.0;
        write1(f, "padding", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 16384, pad);
    } else if (!strcmp(mode, "external")) {
        hsize_t dims[2] = {N, D};
        hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_external(dcpl, arg, 0, (hsize_t)N * D * 4);
        hid_t ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, N, y);
    } else if (!strcmp(mode, "virtual")) {
        hsize_t dims[2] = {N, D};
        hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_virtual(dcpl, sp, arg, "/features", sp);
        hid_t ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, N, y);
    } else if (!strcmp(mode, "virtual-self")) {
        hsize_t dims[2] = {N, D};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t src = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(src, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(src);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_virtual(dcpl, sp, ".", "/x", sp);
        hid_t ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, N, y);
    } else if (!strcmp(mode, "labels-virtual")) {
        write_features(f, H5T_IEEE_F32LE, x, N, D);
        hsize_t n = N;
        hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_virtual(dcpl, sp, arg, "/labels", sp);
        hid_t ds = H5Dcreate2(f, "labels", H5T_STD_I64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
    } else if (!strcmp(mode, "chunkraw")) {
        hsize_t rows = (hsize_t)atoll(arg), dims[2] = {rows, D}, chunk[2] = {16, D};
        float *big = malloc(rows * D * sizeof *big);
        long long *lab = malloc(rows * sizeof *lab);
        float shift = argc > 4 ? (float)atof(argv[4]) : 0.0f;
        for (hsize_t i = 0; i < rows * D; i++) big[i] = (float)x[i % (N * D)] + (float)(i / (N * D)) * 1e-3f + shift;
        for (hsize_t i = 0; i < rows; i++) lab[i] = y[i % N];
        hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 2, chunk);
        hid_t ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, big);
        H5Dclose(ds);
        H5Pclose(dcpl);
        H5Sclose(sp);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, rows, lab);
        free(big);
        free(lab);
    } else if (!strcmp(mode, "regress")) {
        good_set(x, y, yv, atof(arg));
        write_features(f, H5T_IEEE_F32LE, x, N, D);
        write1(f, "labels", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, N, yv);
        task = "regress";
        classes = 0;
    } else {
        if (!strcmp(mode, "f64big")) x[5 * D + 2] = 1e300;
        if (!strcmp(mode, "label64")) y[7] = 1LL << 32;
        if (!strcmp(mode, "classes")) classes = atoll(arg);
        if (!strcmp(mode, "version")) version = atoll(arg);
        write_features(f, !strcmp(mode, "f64big") ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, x, N, D);
        write1(f, "labels", H5T_STD_I64LE, H5T_NATIVE_LLONG, N, y);
    }
    attr_str(f, "format", "chainz-data");
    if (version >= 0) attr_i64(f, "version", version);
    attr_str(f, "task", task);
    attr_i64(f, "classes", classes);
    attr_str(f, "source", "tests/make_bad_data");
    return H5Fclose(f) < 0 ? 2 : 0;
}
