/* Test fixture generator: writes chainz-data files (good and deliberately malformed) with
 * HDF5 directly, the way a user's own h5py script might.
 *
 *   make_data OUT.h5 [--n N] [--d D] [--classes K] [--task classify|ordinal|regress]
 *             [--seed S] [--float64] [--int64-labels] [--chunked]
 *             [--nan-row R] [--bad-label-row R] [--rank1-features] [--int-features]
 *             [--no-format]
 *
 * The data are learnable: class k has mean mu_k (random, separated) plus unit noise; for
 * ordinal the class is the bucket of a linear score; for regress y = w.x + noise. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainz/rng.h"

static void set_str(hid_t f, const char *name, const char *v)
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

static void set_long(hid_t f, const char *name, long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_NATIVE_LONG, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') { /* "--help" is not a file name */
        fprintf(stderr, "usage: make_data OUT.h5 [options]\n");
        return 1;
    }
    const char *out = argv[1], *task = "classify";
    long n = 200, d = 6, K = 3, nan_row = -1, bad_label_row = -1;
    unsigned long long seed = 1;
    int f64 = 0, i64 = 0, chunked = 0, rank1 = 0, intfeat = 0, noformat = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--n")) n = atol(v), i++;
        else if (!strcmp(a, "--d")) d = atol(v), i++;
        else if (!strcmp(a, "--classes")) K = atol(v), i++;
        else if (!strcmp(a, "--task")) task = v, i++;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--nan-row")) nan_row = atol(v), i++;
        else if (!strcmp(a, "--bad-label-row")) bad_label_row = atol(v), i++;
        else if (!strcmp(a, "--float64")) f64 = 1;
        else if (!strcmp(a, "--int64-labels")) i64 = 1;
        else if (!strcmp(a, "--chunked")) chunked = 1;
        else if (!strcmp(a, "--rank1-features")) rank1 = 1;
        else if (!strcmp(a, "--int-features")) intfeat = 1;
        else if (!strcmp(a, "--no-format")) noformat = 1;
        else {
            fprintf(stderr, "make_data: unknown option %s\n", a);
            return 1;
        }
    }
    int regress = !strcmp(task, "regress"), ordinal = !strcmp(task, "ordinal");
    /* the task (class means, regression weights) is fixed; --seed draws the samples, so
     * files made with different seeds are train/validation sets of one task */
    cz_rng r;
    cz_rng_seed(&r, 0x7461736bULL + (uint64_t)(K * 1000 + d));
    double *x = malloc((size_t)(n * d) * sizeof(double)), *mu = malloc((size_t)(K * d) * sizeof(double));
    double *w = malloc((size_t)d * sizeof(double)), *yv = malloc((size_t)n * sizeof(double));
    long long *yc = malloc((size_t)n * sizeof(long long));
    if (!x || !mu || !w || !yv || !yc) return 2;
    for (long i = 0; i < K * d; i++) mu[i] = 2.0 * cz_rng_normal(&r);
    for (long j = 0; j < d; j++) w[j] = cz_rng_normal(&r);
    cz_rng_seed(&r, seed);
    for (long b = 0; b < n; b++) {
        long k = (long)cz_rng_below(&r, (uint64_t)K);
        double score = 0;
        for (long j = 0; j < d; j++) {
            double v = (regress || ordinal) ? cz_rng_normal(&r) : mu[k * d + j] + cz_rng_normal(&r);
            x[b * d + j] = 3.0 + 5.0 * v; /* off-centre and scaled: standardization matters */
            score += w[j] * v;
        }
        if (ordinal) {
            double s = score / sqrt((double)d); /* ~N(0,1): K buckets of equal width */
            k = (long)floor((s + 1.5) / 3.0 * (double)K);
            k = k < 0 ? 0 : k >= K ? K - 1 : k;
        }
        yc[b] = k;
        yv[b] = score + 0.1 * cz_rng_normal(&r);
    }
    if (nan_row >= 0 && nan_row < n) x[nan_row * d] = NAN;
    if (bad_label_row >= 0 && bad_label_row < n) yc[bad_label_row] = K + 3;

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "make_data: cannot create %s\n", out);
        return 2;
    }
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)d}, one[1] = {(hsize_t)(n * d)};
    hid_t sp = rank1 ? H5Screate_simple(1, one, NULL) : H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked && !rank1) {
        hsize_t ch[2] = {n < 16 ? (hsize_t)n : 16, (hsize_t)d};
        H5Pset_chunk(dcpl, 2, ch);
        H5Pset_deflate(dcpl, 1);
    }
    hid_t ft = intfeat ? H5T_STD_I32LE : f64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(f, "features", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Pclose(dcpl);
    hsize_t nd[1] = {(hsize_t)n};
    sp = H5Screate_simple(1, nd, NULL);
    if (regress) {
        ds = H5Dcreate2(f, "labels", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, yv);
    } else {
        ds = H5Dcreate2(f, "labels", i64 ? H5T_STD_I64LE : H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, yc);
    }
    H5Dclose(ds);
    H5Sclose(sp);
    if (!noformat) set_str(f, "format", "chainz-data");
    set_long(f, "version", 1);
    set_str(f, "task", task);
    set_long(f, "classes", regress ? 0 : K);
    set_str(f, "source", "tests/make_data synthetic");
    H5Fclose(f);
    free(x);
    free(mu);
    free(w);
    free(yv);
    free(yc);
    return 0;
}
